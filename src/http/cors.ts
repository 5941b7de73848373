import type { RequestHandler } from 'express';

/** Avara's viewer runs in a browser on another origin: links must answer CORS, preflight included. */
export function cors(allowed: '*' | string[]): RequestHandler {
  return (req, res, next) => {
    const origin = req.get('origin');
    if (allowed === '*') {
      res.setHeader('Access-Control-Allow-Origin', '*');
    } else if (origin && allowed.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.append('Vary', 'Origin');
    } else if (origin) {
      res.append('Vary', 'Origin');
      if (req.method === 'OPTIONS') {
        res.status(403).json({ error: { code: 'origin_not_allowed', message: 'this origin may not use gateway links' } });
        return;
      }
    }
    res.setHeader('Access-Control-Expose-Headers', 'Content-Length, Content-Range, Content-Disposition, Accept-Ranges, X-Request-Id');
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, PUT, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Range, Content-Type, Content-Length');
      res.setHeader('Access-Control-Max-Age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}
