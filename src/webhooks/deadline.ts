export class DeadlineError extends Error {
  constructor() {
    super('deadline reached');
    this.name = 'DeadlineError';
  }
}

/** Margin kept for building and sending the answer after the PACS work stops. */
export const ANSWER_MARGIN_MS = 300;

/**
 * Runs `work` with the time left before `deadline` (minus a margin to answer in), and rejects with
 * DeadlineError when that runs out even if `work` ignores its budget.
 */
export async function withDeadline<T>(deadline: number, work: (budgetMs: number) => Promise<T>): Promise<T> {
  const budget = deadline - Date.now() - ANSWER_MARGIN_MS;
  if (budget <= 0) throw new DeadlineError();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError()), budget);
  });
  try {
    return await Promise.race([work(budget), expired]);
  } finally {
    clearTimeout(timer);
  }
}
