import { parseArgs } from 'node:util';
import { avaraReportId } from '../webhooks/event-schemas.js';
import { jobCounts, listJobs, REPORT_STATES, retryJob, type ReportJobView, type ReportState } from '../reports/journal.js';
import { CliError, configFrom, EXIT, formatTable, parseOrUsage, UsageError, type CliContext, type Command } from './command.js';
import { openStore, requireTable } from './open-store.js';

export const help = `usage: avara-gateway reports [--state STATE] [--limit N] [--format table|jsonl]
       avara-gateway reports retry <reportId> [--force]

Report delivery jobs (one per report.delivered) from DATA_DIR/gateway.sqlite, newest first.
Never shows the presigned URL or the report text.

  reports                  jobs that need attention: pending, unmatched and failed (plus a count of each state)
    --state STATE          ${REPORT_STATES.join(', ')} or all
    --limit N              at most N jobs (default 100)
    --format F             table (default) or jsonl
  reports retry <reportId> puts a failed or unmatched job back in the queue, due now, with another hour to
                           succeed (a failed critical notification too); a running gateway picks it up within
                           REPORT_POLL_MS. A filed job is filed again only with --force.`;

const ATTENTION: readonly ReportState[] = ['pending', 'unmatched', 'failed'];

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  if (argv[0] === 'retry') return retry(argv.slice(1), ctx);
  const { values, positionals } = parseOrUsage('reports', () =>
    parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: { state: { type: 'string' }, limit: { type: 'string', default: '100' }, format: { type: 'string', default: 'table' } },
    }),
  );
  const usage = (message: string) => new UsageError(message, 'reports');
  if (positionals.length > 0) throw usage(`unknown subcommand "${positionals[0]}": the only one is retry`);
  const state = values.state;
  if (state !== undefined && state !== 'all' && !(REPORT_STATES as readonly string[]).includes(state)) {
    throw usage(`--state must be one of ${REPORT_STATES.join(', ')}, all; got "${state}"`);
  }
  const limit = /^\d{1,5}$/.test(values.limit) ? Number(values.limit) : NaN;
  if (!(limit >= 1 && limit <= 10_000)) throw usage(`--limit must be a whole number from 1 to 10000, got "${values.limit}"`);
  if (values.format !== 'table' && values.format !== 'jsonl') throw usage(`--format must be table or jsonl, got "${values.format}"`);

  const config = configFrom(ctx.env);
  const db = openStore(config.dataDir, { readonly: true });
  let jobs: ReportJobView[];
  try {
    requireTable(db, 'report_jobs', 'report journal');
    const counts = jobCounts(db);
    const oldest = counts.oldestPendingReceivedAt === undefined ? '' : `; oldest pending received ${new Date(counts.oldestPendingReceivedAt).toISOString()}`;
    ctx.note(`report jobs: ${REPORT_STATES.map((s) => `${counts[s]} ${s}`).join(', ')}${oldest}`);
    if (state === 'all') jobs = listJobs(db, { limit });
    else if (state !== undefined) jobs = listJobs(db, { state: state as ReportState, limit });
    else jobs = ATTENTION.flatMap((s) => listJobs(db, { state: s, limit })).sort((a, b) => b.receivedAt.localeCompare(a.receivedAt)).slice(0, limit);
  } finally {
    db.close();
  }
  if (values.format === 'jsonl') {
    for (const j of jobs) ctx.out(JSON.stringify(j));
  } else if (jobs.length > 0) {
    for (const line of formatTable(['REPORT ID', 'STATE', 'STAGE', 'CRITICAL', 'ATTEMPTS', 'RECEIVED', 'NEXT / FILED', 'LAST ERROR'], jobs.map(row))) ctx.out(line);
  } else {
    ctx.note(state === undefined ? 'no report job needs attention' : `no ${state === 'all' ? '' : `${state} `}report job`);
  }
  return EXIT.ok;
}

export const reports: Command = { help, run };

async function retry(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseOrUsage('reports', () =>
    parseArgs({ args: argv, strict: true, allowPositionals: true, options: { force: { type: 'boolean', default: false } } }),
  );
  const usage = (message: string) => new UsageError(message, 'reports');
  if (positionals.length !== 1) throw usage('reports retry takes one reportId (rep_…)');
  const reportId = positionals[0]!;
  if (!avaraReportId.safeParse(reportId).success) throw usage(`"${reportId.slice(0, 80)}" is not a reportId (rep_ and 32 lowercase hex)`);

  const config = configFrom(ctx.env);
  const db = openStore(config.dataDir, { readonly: false });
  try {
    requireTable(db, 'report_jobs', 'report journal');
    const outcome = retryJob(db, reportId, { force: values.force });
    if (!outcome.ok) throw new CliError(outcome.message);
    const notify = outcome.notificationRetried ? '; its critical notification too' : '';
    ctx.out(`✔ ${reportId} queued again (was ${outcome.previousState}${notify}); a running gateway picks it up within ${config.reports.pollMs} ms`);
  } finally {
    db.close();
  }
  return EXIT.ok;
}

function row(j: ReportJobView): string[] {
  const error = j.lastError ?? j.criticalNotification?.error ?? '';
  return [
    j.reportId,
    j.state,
    j.stage,
    j.isCritical ? `yes${j.criticalNotification ? ` (notify ${j.criticalNotification.state})` : ''}` : 'no',
    String(j.attempts),
    j.receivedAt,
    j.filedAt ?? j.nextAttemptAt ?? '',
    error.length > 80 ? `${error.slice(0, 79)}…` : error,
  ];
}
