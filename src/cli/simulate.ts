import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { Config } from '../config/env.js';
import { describeIssues, KNOWN_EVENT_TYPES, knownEvent } from '../webhooks/event-schemas.js';
import { sign } from '../webhooks/signature.js';
import { CliError, configFrom, errorMessage, EXIT, parseOrUsage, printableUrl, UsageError, type CliContext, type Command } from './command.js';

export const help = `usage: avara-gateway simulate <event-type> [options]

Sends one event to a gateway the way Avara does: a valid body, signed with the FIRST secret of
AVARA_WEBHOOK_SECRET (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature), and prints
the gateway's JSON answer on stdout (the HTTP status goes to stderr). Exit status 1 unless the answer is 2xx.

event types:
  study.access_requested               needs --study-instance-uid
  secondary_capture.access_requested   needs --study-instance-uid
  report.delivered                     needs --study-id (one the gateway has seen) and --presigned-url

options:
  --study-instance-uid UID   DICOM Study Instance UID
  --study-id stu_…           Avara study id (generated when absent, except for report.delivered)
  --series-instance-uid UID  secondary_capture.access_requested: the new series (optional)
  --sop-instance-uid UID     secondary_capture.access_requested: the new object (optional)
  --presigned-url URL        report.delivered: where the gateway downloads the PDF
  --report-id rep_…          report.delivered: the report id (generated when absent)
  --critical                 report.delivered: isCritical true
  --plain-text TEXT          report.delivered: the report text (optional)
  --event-id whe_…           the event (and webhook) id; generated when absent; repeat one to test replay
  --url URL                  where to POST (default: http://localhost:$PORT/webhooks/avara of this configuration)
  --timeout-ms N             how long to wait for the answer (default: 60000)

example:
  avara-gateway simulate study.access_requested --study-instance-uid 1.2.840.113619.2.55.3.1234`;

const hex32 = () => randomBytes(16).toString('hex');

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseOrUsage('simulate', () =>
    parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        'study-instance-uid': { type: 'string' },
        'study-id': { type: 'string' },
        'series-instance-uid': { type: 'string' },
        'sop-instance-uid': { type: 'string' },
        'presigned-url': { type: 'string' },
        'report-id': { type: 'string' },
        critical: { type: 'boolean', default: false },
        'plain-text': { type: 'string' },
        'event-id': { type: 'string' },
        url: { type: 'string' },
        'timeout-ms': { type: 'string' },
      },
    }),
  );
  const usage = (message: string) => new UsageError(message, 'simulate');
  if (positionals.length !== 1) throw usage(positionals.length === 0 ? 'which event type? one of ' + KNOWN_EVENT_TYPES.join(', ') : `one event type only, got ${positionals.length} arguments`);
  const type = positionals[0]!;
  if (!(KNOWN_EVENT_TYPES as readonly string[]).includes(type)) throw usage(`unknown event type "${type}": one of ${KNOWN_EVENT_TYPES.join(', ')}`);
  const timeoutMs = values['timeout-ms'] === undefined ? 60_000 : Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw usage('--timeout-ms must be a whole number of milliseconds');

  const id = values['event-id'] ?? `whe_${hex32()}`;
  let data: Record<string, unknown>;
  if (type === 'report.delivered') {
    if (!values['study-id']) throw usage('report.delivered needs --study-id: the studyId of a study the gateway has given links for');
    if (!values['presigned-url']) throw usage('report.delivered needs --presigned-url: where the gateway downloads the report PDF');
    data = {
      isCritical: values.critical,
      presignedUrl: values['presigned-url'],
      reportId: values['report-id'] ?? `rep_${hex32()}`,
      studyId: values['study-id'],
      ...(values['plain-text'] !== undefined ? { plainText: values['plain-text'] } : {}),
    };
  } else {
    if (!values['study-instance-uid']) throw usage(`${type} needs --study-instance-uid`);
    data = { studyId: values['study-id'] ?? `stu_${hex32()}`, studyInstanceUid: values['study-instance-uid'] };
    if (type === 'secondary_capture.access_requested') {
      if (values['series-instance-uid']) data.seriesInstanceUid = values['series-instance-uid'];
      if (values['sop-instance-uid']) data.sopInstanceUid = values['sop-instance-uid'];
    }
  }
  const notFor = (names: string[]) => names.filter((n) => values[n as keyof typeof values] !== undefined && values[n as keyof typeof values] !== false);
  const stray =
    type === 'report.delivered'
      ? notFor(['study-instance-uid', 'series-instance-uid', 'sop-instance-uid'])
      : notFor(['presigned-url', 'report-id', 'critical', 'plain-text', ...(type === 'study.access_requested' ? ['series-instance-uid', 'sop-instance-uid'] : [])]);
  if (stray.length > 0) throw usage(`${stray.map((s) => `--${s}`).join(', ')} ${stray.length === 1 ? 'does' : 'do'} not apply to ${type}`);

  // The same schema the gateway applies: a simulated event that it would reject as malformed is our mistake.
  const event = { id, type, data };
  const checked = knownEvent.safeParse(event);
  if (!checked.success) throw usage(describeIssues(checked.error));

  const config = configFrom(ctx.env);
  const url = values.url ?? defaultUrl(config);
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw usage(`--url must be an http(s) URL, got "${url}"`);
  }

  const body = JSON.stringify(event);
  const timestamp = Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'avara-gateway-cli (simulate)',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
  };
  const secret = config.webhookSecrets[0];
  if (secret) headers['webhook-signature'] = sign(secret, id, timestamp, body);
  else ctx.note('note: AVARA_WEBHOOK_SECRET is not set, so the event goes unsigned (only a gateway with AVARA_WEBHOOK_VERIFY=false accepts it)');

  ctx.note(`→ POST ${printableUrl(url)}: ${type} ${id} (${summary(data)})`);
  const started = performance.now();
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    if ((err as Error).name === 'TimeoutError') throw new CliError(`no answer from ${printableUrl(url)} within ${timeoutMs} ms`);
    throw new CliError(`could not reach ${printableUrl(url)} (${cause ?? errorMessage(err)}): is the gateway running, and is --url right?`);
  }
  const text = await res.text();
  const ms = Math.round(performance.now() - started);
  ctx.note(`← HTTP ${res.status} ${res.statusText} in ${ms} ms${res.headers.get('x-replayed') ? ' (replayed answer)' : ''}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  ctx.out(json === undefined ? text.slice(0, 4000) : JSON.stringify(json, null, 2));
  if (res.ok) return EXIT.ok;
  const code = (json as { error?: { code?: string } } | undefined)?.error?.code;
  const hint = res.status === 401 ? ": is AVARA_WEBHOOK_SECRET the same as the gateway's, and is this machine's clock within 5 minutes of the gateway's?" : '';
  throw new CliError(`the gateway answered HTTP ${res.status}${code ? ` (${code})` : ''}${hint}`);
}

export const simulate: Command = { help, run };

function defaultUrl(config: Config): string {
  const host = ['0.0.0.0', '::', ''].includes(config.host) ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return `http://${host}:${config.port}/webhooks/avara`;
}

/** Ids only: never the presigned URL or the report text. */
function summary(data: Record<string, unknown>): string {
  return ['studyId', 'studyInstanceUid', 'reportId']
    .filter((k) => typeof data[k] === 'string')
    .map((k) => `${k} ${String(data[k])}`)
    .join(', ');
}
