import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Db } from '../store/database.js';
import { CliError } from './command.js';

/**
 * The running gateway's store, opened beside it (WAL lets both work at once). Unlike openDatabase this never
 * creates DATA_DIR or the file and never migrates: an operator command must not change what it inspects.
 */
export function openStore(dataDir: string, opts: { readonly: boolean }): Db {
  const file = path.join(path.resolve(dataDir), 'gateway.sqlite');
  if (!existsSync(file)) {
    throw new CliError(`no gateway store at ${file}: is DATA_DIR the gateway's? (the gateway creates it when it first starts)`);
  }
  let db: Db;
  try {
    db = new Database(file, { readonly: opts.readonly, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
  } catch (err) {
    throw new CliError(`cannot open ${file}${opts.readonly ? ' for reading' : ''}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return db;
}

/** A clear line when the store predates a table (the gateway that wrote it is older than this CLI). */
export function requireTable(db: Db, table: string, what: string): void {
  const found = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(table);
  if (!found) {
    db.close();
    throw new CliError(`this store has no ${what} (table ${table}): start the current gateway once so it can upgrade the store`);
  }
}
