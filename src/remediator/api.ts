// The remediator's own API: what it knows of its targets and actions, and closing a circuit by hand.
import { Router } from 'express';
import type { Remediator } from './remediator.ts';

export function apiRouter(o: { remediator: () => Remediator; authorized: (header: string | undefined) => boolean }): Router {
  const router = Router();
  router.get('/api/v1/targets', (_req, res) => {
    res.json({ targets: o.remediator().snapshot() });
  });
  router.get('/api/v1/actions', (_req, res) => {
    res.json({ actions: o.remediator().recentActions() });
  });
  router.post('/api/v1/targets/:name/circuit/close', (req, res) => {
    if (!o.authorized(req.get('authorization'))) return void res.status(401).set('www-authenticate', 'Bearer').json({ error: 'missing or wrong bearer token' });
    if (!o.remediator().closeCircuit(req.params.name)) return void res.status(404).json({ error: `no target ${JSON.stringify(req.params.name.slice(0, 200))}` });
    res.json({ status: 'closed', target: req.params.name });
  });
  return router;
}
