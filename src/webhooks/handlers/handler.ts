import type { Logger } from 'pino';

export interface HandlerContext {
  webhookId: string;
  log: Logger;
  /** When the synchronous answer must be on its way (epoch ms). */
  deadline: number;
}

/** A handler's answer; `final` answers are kept and replayed for the same webhook id, transient ones are not. */
export interface HandlerAnswer {
  status: number;
  body: unknown;
  final: boolean;
  /** Short outcome for metrics and the log line. */
  outcome: string;
}

export type EventHandler<E> = (event: E, ctx: HandlerContext) => Promise<HandlerAnswer>;
