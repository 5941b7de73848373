#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError, errorMessage, EXIT, type CliContext, type Command } from './command.js';

/**
 * `avara-gateway <command>`: the operator's tools, installed as the package's bin. Every command reads the
 * same environment variables as the gateway (src/config/env.ts). Results go to stdout, progress and notes to
 * stderr, and a failure is one line on stderr with a non-zero exit status (1 failed, 2 bad arguments,
 * 78 bad configuration). Commands are loaded on demand, so `--help` and `simulate` never open the store.
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  doctor: { summary: 'check configuration, PACS (QIDO, WADO, STOW without storing), clock and DATA_DIR', load: async () => (await import('./doctor.js')).doctor },
  simulate: { summary: 'send a correctly signed Avara event to a gateway and print its answer', load: async () => (await import('./simulate.js')).simulate },
  audit: { summary: 'query the audit trail: who accessed a study, what left, which reports were filed', load: async () => (await import('./audit.js')).audit },
  reports: { summary: 'list report delivery jobs that need attention; retry one', load: async () => (await import('./reports.js')).reports },
  demo: {
    summary: 'local Orthanc + sample study + gateway + one signed event, end to end (npm run demo)',
    load: async () => {
      const { runDemo } = await import('./demo.js');
      return { help: 'usage: avara-gateway demo [--once] [--no-install] [--port 8080] [--dir .demo]', run: (argv) => runDemo(argv) };
    },
  },
};

const HELP = `usage: avara-gateway <command> [options]

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`)
  .join('\n')}

Every command reads the gateway's environment variables (DICOMWEB_URL, AVARA_WEBHOOK_SECRET, DATA_DIR, …).
avara-gateway <command> --help shows a command's options.`;

async function main(argv: string[], ctx: CliContext): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined;
    if (topic && COMMANDS[topic]) ctx.out((await COMMANDS[topic].load()).help);
    else ctx.out(HELP);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version' || name === '-v') {
    ctx.out(version());
    return EXIT.ok;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) throw new CliError(`unknown command "${name.slice(0, 40)}": one of ${Object.keys(COMMANDS).join(', ')} (see: avara-gateway --help)`, EXIT.usage);
  const command = await entry.load();
  const options = rest.slice(0, rest.includes('--') ? rest.indexOf('--') : undefined);
  if (options.includes('--help') || options.includes('-h')) {
    ctx.out(command.help);
    return EXIT.ok;
  }
  return command.run(rest, ctx);
}

function version(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'avara-gateway') return `avara-gateway ${pkg.version ?? ''}`.trim();
    }
  }
  return 'avara-gateway (version unknown)';
}

function exitWhenFlushed(code: number): void {
  // Exit only once stdout has taken everything (a pipe is written asynchronously).
  process.stdout.write('', () => process.exit(code));
}

process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.ok); // `| head`: the reader has what it wanted
});
const commandName = process.argv[2] && Object.hasOwn(COMMANDS, process.argv[2]) ? ` ${process.argv[2]}` : '';
const ctx: CliContext = {
  env: process.env,
  out: (line) => void process.stdout.write(`${line}\n`),
  note: (line) => void process.stderr.write(`${line}\n`),
};
main(process.argv.slice(2), ctx).then(exitWhenFlushed, (err: unknown) => {
  const code = err instanceof CliError ? err.exitCode : EXIT.failed;
  const message = errorMessage(err).replace(/\s*\n\s*/g, ' ');
  process.stderr.write(`avara-gateway${commandName}: ${err instanceof CliError ? '' : 'unexpected error: '}${message}\n`);
  exitWhenFlushed(code);
});
