import { parseArgs } from 'node:util';
import { AuditTrail, toJsonLine, type AuditAction, type AuditEvent, type AuditQuery } from '../observability/audit-trail.js';
import { avaraStudyId, isDicomUid } from '../webhooks/event-schemas.js';
import { configFrom, EXIT, formatTable, parseOrUsage, UsageError, type CliContext, type Command } from './command.js';
import { openStore, requireTable } from './open-store.js';

const ACTIONS = ['links_issued', 'upload_links_issued', 'download', 'media_download', 'upload', 'report_filed', 'report_failed'] as const satisfies readonly AuditAction[];
// Fails to compile when audit-trail.ts gains an action this list does not offer.
const everyAction: Exclude<AuditAction, (typeof ACTIONS)[number]> extends never ? true : never = true;
void everyAction;

export const help = `usage: avara-gateway audit [--study UID|stu_…] [--action A[,A…]] [--since TIME] [--until TIME]
                           [--limit N] [--format jsonl|table]

Reads the audit trail in DATA_DIR/gateway.sqlite (read-only; safe while the gateway runs), oldest first.
JSON lines by default (one event per line, "time" first), or a table for reading.

options:
  --study X        an Avara studyId (stu_…) or a StudyInstanceUID
  --action A       ${ACTIONS.join(', ')}
                   (several separated by commas)
  --since TIME     events at or after TIME (ISO 8601: 2025-03-01, 2025-03-01T08:00:00Z, …+01:00;
                   a date alone is midnight UTC)
  --until TIME     events before TIME (exclusive)
  --limit N        at most N events
  --format F       jsonl (default) or table

an auditor's three questions:
  who accessed this study, and when:   avara-gateway audit --study 1.2.840.113619.2.55.3.1234 --format table
  what left the building in a window:  avara-gateway audit --action download --since 2025-03-01 --until 2025-04-01
  which reports were filed:            avara-gateway audit --action report_filed`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const { values } = parseOrUsage('audit', () =>
    parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        study: { type: 'string' },
        action: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        limit: { type: 'string' },
        format: { type: 'string', default: 'jsonl' },
      },
    }),
  );
  const usage = (message: string) => new UsageError(message, 'audit');
  const study = values.study?.trim();
  if (study !== undefined && !avaraStudyId.safeParse(study).success && !isDicomUid(study)) {
    throw usage(`--study must be an Avara studyId (stu_ and 32 lowercase hex) or a StudyInstanceUID, got "${study.slice(0, 80)}"`);
  }
  const actions = values.action === undefined ? [] : values.action.split(',').map((a) => a.trim()).filter(Boolean);
  const unknown = actions.filter((a) => !(ACTIONS as readonly string[]).includes(a));
  if (values.action !== undefined && (actions.length === 0 || unknown.length > 0)) {
    throw usage(`unknown action ${unknown.map((a) => `"${a}"`).join(', ') || '""'}: one of ${ACTIONS.join(', ')}`);
  }
  const since = values.since === undefined ? undefined : parseTime('--since', values.since, usage);
  const until = values.until === undefined ? undefined : parseTime('--until', values.until, usage);
  if (since !== undefined && until !== undefined && until <= since) throw usage('--until must be later than --since');
  let limit: number | undefined;
  if (values.limit !== undefined) {
    limit = /^\d{1,9}$/.test(values.limit) ? Number(values.limit) : NaN;
    if (!(limit >= 1)) throw usage(`--limit must be a whole number of at least 1, got "${values.limit}"`);
  }
  const format = values.format;
  if (format !== 'jsonl' && format !== 'table') throw usage(`--format must be jsonl or table, got "${format}"`);

  const config = configFrom(ctx.env);
  const db = openStore(config.dataDir, { readonly: true });
  try {
    requireTable(db, 'audit_events', 'audit trail');
    const trail = new AuditTrail(db);
    const query: AuditQuery = { study, since, until };
    // One action is filtered by SQL; several are filtered here (the trail's query takes one), limit last.
    const events = actions.length === 1 ? trail.query({ ...query, action: actions[0] as AuditAction, limit }) : filtered(trail.query(query), new Set(actions), limit);
    let count = 0;
    if (format === 'jsonl') {
      for (const e of events) {
        ctx.out(toJsonLine(e));
        count++;
      }
    } else {
      const rows: string[][] = [];
      for (const e of events) rows.push(tableRow(e));
      count = rows.length;
      if (count > 0) for (const line of formatTable(['TIME', 'ACTION', 'STUDY ID', 'STUDY INSTANCE UID', 'SOP INSTANCE UID', 'CLIENT', 'STATUS', 'BYTES', 'DETAIL'], rows)) ctx.out(line);
    }
    ctx.note(`${count} audit ${count === 1 ? 'event' : 'events'}${describe(study, actions, values.since, values.until)}`);
  } finally {
    db.close();
  }
  return EXIT.ok;
}

export const audit: Command = { help, run };

function* filtered(events: Iterable<AuditEvent>, actions: Set<string>, limit: number | undefined): Generator<AuditEvent> {
  let n = 0;
  for (const e of events) {
    if (actions.size > 0 && !actions.has(e.action)) continue;
    if (limit !== undefined && n >= limit) return;
    n++;
    yield e;
  }
}

function parseTime(option: string, text: string, usage: (m: string) => Error): number {
  // Date.parse accepts much that is not ISO 8601 ("yesterday" is NaN, but "1" is a year): insist on a date first.
  const t = /^\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$/.test(text.trim()) ? Date.parse(text.trim()) : NaN;
  if (!Number.isFinite(t)) throw usage(`${option} must be an ISO 8601 date or time (e.g. 2025-03-01 or 2025-03-01T08:00:00Z), got "${text.slice(0, 40)}"`);
  return t;
}

function tableRow(e: AuditEvent): string[] {
  const detail = [
    ...(e.webhookId ? [`webhook=${e.webhookId}`] : []),
    ...Object.entries(e.detail ?? {}).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`),
  ].join(' ');
  return [
    new Date(e.at).toISOString(),
    e.action,
    e.studyId ?? '',
    e.studyInstanceUid ?? '',
    e.sopInstanceUid ?? '',
    e.client ?? '',
    e.status === undefined ? '' : String(e.status),
    e.bytes === undefined ? '' : String(e.bytes),
    detail,
  ];
}

function describe(study: string | undefined, actions: string[], since: string | undefined, until: string | undefined): string {
  const parts = [study && `study ${study}`, actions.length > 0 && actions.join('/'), since && `since ${since}`, until && `until ${until}`].filter(Boolean);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}
