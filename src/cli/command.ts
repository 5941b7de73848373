import { ConfigError, loadConfig, type Config } from '../config/env.js';

/**
 * What every operator command shares: how it writes, how it fails, how it reads the configuration.
 * A command returns its exit code; anything it cannot recover from is a CliError, which index.ts prints
 * as one line on stderr.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, config: 78 } as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Bad arguments: exit 2 and a pointer to --help. */
export class UsageError extends CliError {
  constructor(message: string, command: string) {
    super(`${message} (see: avara-gateway ${command} --help)`, EXIT.usage);
    this.name = 'UsageError';
  }
}

export interface CliContext {
  env: NodeJS.ProcessEnv;
  /** A line for stdout: results. */
  out(line: string): void;
  /** A line for stderr: progress and notes, so stdout stays machine-readable. */
  note(line: string): void;
}

export interface Command {
  /** Usage text printed by --help. */
  help: string;
  run(argv: string[], ctx: CliContext): Promise<number>;
}

/** Runs node:util parseArgs and turns its errors into one short UsageError line. */
export function parseOrUsage<R>(command: string, parse: () => R): R {
  try {
    return parse();
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const option = /'([^']+)'/.exec(e.message ?? '')?.[1] ?? 'option';
      throw new UsageError(`unknown option ${option}`, command);
    }
    if (e.code?.startsWith('ERR_PARSE_ARGS_')) throw new UsageError((e.message ?? 'bad arguments').split('\n')[0]!, command);
    throw err;
  }
}

/** The gateway's own configuration from the same variables; a bad one is one line naming every problem. */
export function configFrom(env: NodeJS.ProcessEnv): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new CliError(`invalid configuration: ${err.problems.join('; ')} (avara-gateway doctor lists each problem)`, EXIT.config);
    }
    throw err;
  }
}

/** A URL fit to print: any user:password in it is removed. */
export function printableUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, url.endsWith('/') ? '/' : '');
  } catch {
    return url;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Plain-text table: a header row and left-aligned columns two spaces apart. */
export function formatTable(headers: string[], rows: string[][]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}
