/**
 * Writes a tiny Qwen3-architecture GGUF model for the real-llama-server tests: no weights can be
 * downloaded, and CI machines may lack Python/numpy, so the GGUF format is read and written here.
 *
 *   node write-tiny-qwen3-gguf.ts --vocab ggml-vocab-qwen2.gguf --template Qwen-Qwen3-0.6B.jinja --out tiny-qwen3.gguf
 *
 * The tokenizer (tokens, merges, pre-tokenizer) comes from llama.cpp's ggml-vocab-qwen2.gguf plus
 * Qwen3's added tokens; the chat template is Qwen3-0.6B's. Weights are seeded (byte-identical on
 * every run) and shaped so greedy decoding follows a fixed chain of tokens (see CHAIN), giving
 * tests a meaningful reply while every token is still a real forward pass through llama.cpp.
 */
import { closeSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';

// --- GGUF format (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md) -----------------------

const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
const GGUF_VERSION = 3;
const ALIGNMENT = 32; // general.alignment default

export const ValueType = {
  U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, Bool: 7, String: 8, Array: 9, U64: 10, I64: 11, F64: 12,
} as const;
export type ValueType = (typeof ValueType)[keyof typeof ValueType];

export type Scalar = number | bigint | boolean | string;
export type Value =
  | { type: Exclude<ValueType, typeof ValueType.Array>; value: Scalar }
  | { type: typeof ValueType.Array; itemType: ValueType; items: Scalar[] };

export interface TensorInfo {
  name: string;
  dims: number[]; // ne[0] first: the innermost (contiguous) dimension
  type: number; // ggml_type: 0 F32, 1 F16
  offset: number; // relative to the start of the tensor data section
}

export interface Gguf {
  version: number;
  kv: Map<string, Value>;
  tensors: TensorInfo[];
  dataOffset: number;
}

/** Parses a GGUF header: key/values (arrays included) and tensor infos; tensor data is not read. */
export function readGguf(buf: Buffer): Gguf {
  let pos = 0;
  const u32 = (): number => { const v = buf.readUInt32LE(pos); pos += 4; return v; };
  const u64 = (): number => { const v = buf.readBigUInt64LE(pos); pos += 8; return Number(v); };
  const str = (): string => { const n = u64(); const s = buf.toString('utf8', pos, pos + n); pos += n; return s; };
  const scalar = (type: ValueType): Scalar => {
    let v: Scalar;
    switch (type) {
      case ValueType.U8: v = buf.readUInt8(pos); pos += 1; return v;
      case ValueType.I8: v = buf.readInt8(pos); pos += 1; return v;
      case ValueType.U16: v = buf.readUInt16LE(pos); pos += 2; return v;
      case ValueType.I16: v = buf.readInt16LE(pos); pos += 2; return v;
      case ValueType.U32: return u32();
      case ValueType.I32: v = buf.readInt32LE(pos); pos += 4; return v;
      case ValueType.F32: v = buf.readFloatLE(pos); pos += 4; return v;
      case ValueType.Bool: v = buf.readUInt8(pos) !== 0; pos += 1; return v;
      case ValueType.String: return str();
      case ValueType.U64: v = buf.readBigUInt64LE(pos); pos += 8; return v;
      case ValueType.I64: v = buf.readBigInt64LE(pos); pos += 8; return v;
      case ValueType.F64: v = buf.readDoubleLE(pos); pos += 8; return v;
      default: throw new Error(`GGUF: unknown value type ${type} at byte ${pos}`);
    }
  };

  if (u32() !== GGUF_MAGIC) throw new Error('not a GGUF file');
  const version = u32();
  if (version !== 2 && version !== 3) throw new Error(`GGUF version ${version} not supported`);
  const nTensors = u64();
  const nKv = u64();
  const kv = new Map<string, Value>();
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const type = u32() as ValueType;
    if (type === ValueType.Array) {
      const itemType = u32() as ValueType;
      if (itemType === ValueType.Array) throw new Error(`GGUF: nested arrays (${key}) not supported`);
      const n = u64();
      const items: Scalar[] = new Array(n);
      for (let j = 0; j < n; j++) items[j] = scalar(itemType);
      kv.set(key, { type, itemType, items });
    } else {
      kv.set(key, { type, value: scalar(type) });
    }
  }
  const tensors: TensorInfo[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nDims = u32();
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(u64());
    tensors.push({ name, dims, type: u32(), offset: u64() });
  }
  const alignment = kv.get('general.alignment');
  const align = alignment && alignment.type !== ValueType.Array ? Number(alignment.value) : ALIGNMENT;
  return { version, kv, tensors, dataOffset: Math.ceil(pos / align) * align };
}

/** Appends little-endian GGUF fields to a list of chunks. */
class ByteWriter {
  readonly chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void { this.chunks.push(b); this.length += b.length; }
  u32(v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  u64(v: number | bigint): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  str(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  scalar(type: ValueType, v: Scalar): void {
    const b = Buffer.alloc(8);
    switch (type) {
      case ValueType.U8: b.writeUInt8(Number(v)); return this.push(b.subarray(0, 1));
      case ValueType.I8: b.writeInt8(Number(v)); return this.push(b.subarray(0, 1));
      case ValueType.U16: b.writeUInt16LE(Number(v)); return this.push(b.subarray(0, 2));
      case ValueType.I16: b.writeInt16LE(Number(v)); return this.push(b.subarray(0, 2));
      case ValueType.U32: b.writeUInt32LE(Number(v)); return this.push(b.subarray(0, 4));
      case ValueType.I32: b.writeInt32LE(Number(v)); return this.push(b.subarray(0, 4));
      case ValueType.F32: b.writeFloatLE(Number(v)); return this.push(b.subarray(0, 4));
      case ValueType.Bool: b.writeUInt8(v === true ? 1 : 0); return this.push(b.subarray(0, 1));
      case ValueType.String: return this.str(String(v));
      case ValueType.U64: b.writeBigUInt64LE(BigInt(v)); return this.push(b);
      case ValueType.I64: b.writeBigInt64LE(BigInt(v)); return this.push(b);
      case ValueType.F64: b.writeDoubleLE(Number(v)); return this.push(b);
      default: throw new Error(`GGUF: cannot write value type ${type}`);
    }
  }
  value(v: Value): void {
    this.u32(v.type);
    if (v.type === ValueType.Array) {
      this.u32(v.itemType);
      this.u64(v.items.length);
      for (const item of v.items) this.scalar(v.itemType, item);
    } else {
      this.scalar(v.type, v.value);
    }
  }
  pad(align: number): void { const n = (align - (this.length % align)) % align; if (n > 0) this.push(Buffer.alloc(n)); }
}

interface Tensor { name: string; dims: number[]; data: Float32Array; f16: boolean }

/** Serialises a whole GGUF v3 file: header, key/values, tensor infos, then aligned tensor data. */
export function writeGguf(path: string, kv: Map<string, Value>, tensors: Tensor[]): void {
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(kv.size);
  for (const [key, value] of kv) { w.str(key); w.value(value); }
  let offset = 0;
  const bodies: Buffer[] = [];
  for (const t of tensors) {
    const body = t.f16 ? toF16(t.data) : Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.f16 ? 1 : 0);
    w.u64(offset);
    bodies.push(body);
    offset += Math.ceil(body.length / ALIGNMENT) * ALIGNMENT;
  }
  w.pad(ALIGNMENT);
  for (const body of bodies) { w.push(body); w.pad(ALIGNMENT); }
  // Write under a temporary name and rename, so a crash never leaves a truncated model behind.
  const fd = openSync(`${path}.partial`, 'w');
  try { for (const chunk of w.chunks) writeSync(fd, chunk); } finally { closeSync(fd); }
  renameSync(`${path}.partial`, path);
}

const f32 = new Float32Array(1);
const f32bits = new Uint32Array(f32.buffer);

/** IEEE 754 binary32 -> binary16 bits, round to nearest even (the lib target has no Float16Array). */
function halfBits(v: number): number {
  f32[0] = v;
  const x = f32bits[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  let mant = x & 0x7fffff;
  if (((x >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  if (exp >= 0x1f) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (exp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry into the exponent is correct
  return sign | h;
}

function toF16(data: Float32Array): Buffer {
  const out = Buffer.alloc(data.length * 2);
  for (let i = 0; i < data.length; i++) out.writeUInt16LE(halfBits(data[i]!), i * 2);
  return out;
}

// --- The model ------------------------------------------------------------------------------------

const N_EMBD = 64;
const N_LAYER = 2;
const N_HEAD = 4;
const N_HEAD_KV = 2; // grouped-query attention, like the real Qwen3
const HEAD_DIM = 16; // n_embd / n_head; also n_rot (llama.cpp's qwen3 graph asserts it)
const N_FF = 128;
const SEED = 0x5e471e1;

// Token types (llama_token_type in llama.cpp).
const NORMAL = 1;
const CONTROL = 3;
const USER_DEFINED = 4;

/**
 * Qwen3's added tokens at their real ids (Qwen3-0.6B's tokenizer.json). `<|...|>` tokens are
 * CONTROL, the rest USER_DEFINED, as llama.cpp's convert_hf_to_gguf.py classifies them.
 */
const ADDED_TOKENS: ReadonlyArray<readonly [number, string]> = [
  [151643, '<|endoftext|>'], [151644, '<|im_start|>'], [151645, '<|im_end|>'],
  [151646, '<|object_ref_start|>'], [151647, '<|object_ref_end|>'], [151648, '<|box_start|>'],
  [151649, '<|box_end|>'], [151650, '<|quad_start|>'], [151651, '<|quad_end|>'],
  [151652, '<|vision_start|>'], [151653, '<|vision_end|>'], [151654, '<|vision_pad|>'],
  [151655, '<|image_pad|>'], [151656, '<|video_pad|>'], [151657, '<tool_call>'],
  [151658, '</tool_call>'], [151659, '<|fim_prefix|>'], [151660, '<|fim_middle|>'],
  [151661, '<|fim_suffix|>'], [151662, '<|fim_pad|>'], [151663, '<|repo_name|>'],
  [151664, '<|file_sep|>'], [151665, '<tool_response>'], [151666, '</tool_response>'],
  [151667, '<think>'], [151668, '</think>'],
];

/**
 * The decoding chain: each token's only likely successor is the next one. The first entry is the
 * last prompt token with thinking on (the "\n" after `<|im_start|>assistant`); with
 * `enable_thinking: false` the template ends the prompt with `</think>` "\n\n", which joins the
 * chain at "\n\n", so the reply is just "OK!". Every token is distinct, so the chain cannot loop:
 * it always ends at `<|im_end|>` (end of generation, finish_reason "stop").
 * Strings are GPT-2 byte-level BPE token texts: "Ġ" is a space, "Ċ" a newline.
 */
const CHAIN = ['Ċ', '<think>', 'Okay', ',', 'Ġthe', 'Ġuser', 'Ġwants', 'Ġa', 'Ġreply', '.', '</think>', 'ĊĊ', 'OK', '!', '<|im_end|>'];
// Logit of the successor: the final RMS norm scales a unit basis vector to sqrt(N_EMBD) = 8, so the
// logit is 8 * OUTPUT_WEIGHT = 32, against |logit| < 1 for every other token: sampling at
// temperature 1 or more still follows the chain (P(off-chain) ~ 150k * e^-31 < 1e-8).
const OUTPUT_WEIGHT = 4;

/** mulberry32: a small seeded PRNG, so the file is byte-identical on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function build(vocabPath: string, templatePath: string): { kv: Map<string, Value>; tensors: Tensor[] } {
  const vocab = readGguf(readFileSync(vocabPath));
  const tokensKv = vocab.kv.get('tokenizer.ggml.tokens');
  const typesKv = vocab.kv.get('tokenizer.ggml.token_type');
  if (tokensKv?.type !== ValueType.Array || typesKv?.type !== ValueType.Array) throw new Error(`${vocabPath}: no tokenizer.ggml.tokens/token_type`);
  const tokens = tokensKv.items.map(String);
  const types = typesKv.items.map(Number);

  // Qwen3's added tokens at their real ids: keep those present, fill padding slots, append the rest.
  for (const [id, text] of ADDED_TOKENS) {
    const existing = tokens.indexOf(text);
    if (existing === id) continue;
    if (existing !== -1) throw new Error(`${vocabPath}: ${text} is token ${existing}, Qwen3 has it at ${id}`);
    while (tokens.length < id) { tokens.push(`[PAD${tokens.length}]`); types.push(USER_DEFINED); }
    tokens[id] = text;
    types[id] = text.startsWith('<|') ? CONTROL : USER_DEFINED;
  }
  const nVocab = tokens.length;
  const id = (text: string): number => {
    const i = tokens.indexOf(text);
    if (i === -1) throw new Error(`token ${JSON.stringify(text)} missing from the vocabulary`);
    return i;
  };

  const kv = new Map<string, Value>();
  const str = (value: string): Value => ({ type: ValueType.String, value });
  const u32 = (value: number): Value => ({ type: ValueType.U32, value });
  const f32v = (value: number): Value => ({ type: ValueType.F32, value });
  kv.set('general.architecture', str('qwen3'));
  kv.set('general.name', str('tiny-qwen3 (qwen-sentinel test model)'));
  kv.set('general.file_type', u32(1)); // mostly F16
  kv.set('qwen3.context_length', u32(4096));
  kv.set('qwen3.embedding_length', u32(N_EMBD));
  kv.set('qwen3.block_count', u32(N_LAYER));
  kv.set('qwen3.feed_forward_length', u32(N_FF));
  kv.set('qwen3.attention.head_count', u32(N_HEAD));
  kv.set('qwen3.attention.head_count_kv', u32(N_HEAD_KV));
  kv.set('qwen3.attention.key_length', u32(HEAD_DIM));
  kv.set('qwen3.attention.value_length', u32(HEAD_DIM));
  kv.set('qwen3.rope.freq_base', f32v(1_000_000));
  kv.set('qwen3.attention.layer_norm_rms_epsilon', f32v(1e-6));
  // Tokenizer: everything the vocab file has (model, pre-tokenizer, merges, ...), then overrides.
  for (const [key, value] of vocab.kv) if (key.startsWith('tokenizer.')) kv.set(key, value);
  kv.set('tokenizer.ggml.tokens', { type: ValueType.Array, itemType: ValueType.String, items: tokens });
  kv.set('tokenizer.ggml.token_type', { type: ValueType.Array, itemType: typesKv.itemType, items: types });
  // As in Qwen3-0.6B: generation ends at <|im_end|>; <|endoftext|> pads; no BOS is prepended.
  kv.set('tokenizer.ggml.bos_token_id', u32(id('<|endoftext|>')));
  kv.set('tokenizer.ggml.eos_token_id', u32(id('<|im_end|>')));
  kv.set('tokenizer.ggml.padding_token_id', u32(id('<|endoftext|>')));
  kv.set('tokenizer.ggml.add_bos_token', { type: ValueType.Bool, value: false });
  kv.set('tokenizer.chat_template', str(readFileSync(templatePath, 'utf8')));

  const rand = rng(SEED);
  const uniform = (n: number, scale: number): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * scale;
    return a;
  };
  const ones = (n: number): Float32Array => new Float32Array(n).fill(1);

  // Residual stream: with attention output and FFN down projections zero, every layer adds 0, so the
  // final hidden state of a position is its own token embedding. Chain tokens embed as distinct
  // (orthogonal) basis vectors; the output row of each successor reads that basis direction.
  const tokEmbd = uniform(nVocab * N_EMBD, 0.1);
  const output = uniform(nVocab * N_EMBD, 0.02);
  const chainIds = CHAIN.map(id);
  if (chainIds.length > N_EMBD) throw new Error('chain longer than the embedding has dimensions');
  chainIds.forEach((tok, k) => {
    tokEmbd.fill(0, tok * N_EMBD, (tok + 1) * N_EMBD);
    tokEmbd[tok * N_EMBD + k] = 1;
    const next = chainIds[k + 1];
    if (next !== undefined) output[next * N_EMBD + k] = OUTPUT_WEIGHT;
  });

  // ggml dims: ne[0] (contiguous) first, so {N_EMBD, nVocab} is one row of N_EMBD per token.
  const tensors: Tensor[] = [
    { name: 'token_embd.weight', dims: [N_EMBD, nVocab], data: tokEmbd, f16: true },
    { name: 'output_norm.weight', dims: [N_EMBD], data: ones(N_EMBD), f16: false },
    { name: 'output.weight', dims: [N_EMBD, nVocab], data: output, f16: true }, // untied from token_embd
  ];
  const proj = 1 / Math.sqrt(N_EMBD);
  for (let l = 0; l < N_LAYER; l++) {
    const blk = `blk.${l}`;
    tensors.push(
      { name: `${blk}.attn_norm.weight`, dims: [N_EMBD], data: ones(N_EMBD), f16: false },
      { name: `${blk}.attn_q.weight`, dims: [N_EMBD, N_HEAD * HEAD_DIM], data: uniform(N_EMBD * N_HEAD * HEAD_DIM, proj), f16: false },
      { name: `${blk}.attn_k.weight`, dims: [N_EMBD, N_HEAD_KV * HEAD_DIM], data: uniform(N_EMBD * N_HEAD_KV * HEAD_DIM, proj), f16: false },
      { name: `${blk}.attn_v.weight`, dims: [N_EMBD, N_HEAD_KV * HEAD_DIM], data: uniform(N_EMBD * N_HEAD_KV * HEAD_DIM, proj), f16: false },
      { name: `${blk}.attn_q_norm.weight`, dims: [HEAD_DIM], data: ones(HEAD_DIM), f16: false },
      { name: `${blk}.attn_k_norm.weight`, dims: [HEAD_DIM], data: ones(HEAD_DIM), f16: false },
      { name: `${blk}.attn_output.weight`, dims: [N_HEAD * HEAD_DIM, N_EMBD], data: new Float32Array(N_HEAD * HEAD_DIM * N_EMBD), f16: false },
      { name: `${blk}.ffn_norm.weight`, dims: [N_EMBD], data: ones(N_EMBD), f16: false },
      { name: `${blk}.ffn_gate.weight`, dims: [N_EMBD, N_FF], data: uniform(N_EMBD * N_FF, proj), f16: false },
      { name: `${blk}.ffn_up.weight`, dims: [N_EMBD, N_FF], data: uniform(N_EMBD * N_FF, proj), f16: false },
      { name: `${blk}.ffn_down.weight`, dims: [N_FF, N_EMBD], data: new Float32Array(N_FF * N_EMBD), f16: false },
    );
  }
  return { kv, tensors };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { vocab: { type: 'string' }, template: { type: 'string' }, out: { type: 'string' } } });
  if (values.vocab === undefined || values.template === undefined || values.out === undefined) {
    process.stderr.write('usage: write-tiny-qwen3-gguf.ts --vocab ggml-vocab-qwen2.gguf --template Qwen-Qwen3-0.6B.jinja --out tiny-qwen3.gguf\n');
    process.exit(2);
  }
  const { kv, tensors } = build(values.vocab, values.template);
  writeGguf(values.out, kv, tensors);
  process.stdout.write(`wrote ${values.out}\n`);
}
