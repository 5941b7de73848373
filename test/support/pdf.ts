/**
 * Real, minimal PDFs for report tests: one page of text, a correct cross-reference table, `%PDF-1.4`
 * first and `%%EOF` last. `fill` adds a stream of that many bytes (big PDFs); `odd` picks the parity
 * of the total length (an Encapsulated Document of odd length gets a padding byte).
 */
export function minimalPdf(opts: { text?: string; fill?: number; odd?: boolean } = {}): Buffer {
  for (let extra = 0; extra < 2; extra++) {
    const pdf = build(opts.text ?? 'Avara test report', opts.fill ?? 0, extra);
    if (opts.odd === undefined || (pdf.length % 2 === 1) === opts.odd) return pdf;
  }
  throw new Error('unreachable');
}

function build(text: string, fill: number, extra: number): Buffer {
  const escaped = text.replace(/[\\()]/g, (c) => `\\${c}`);
  const content = `BT /F1 18 Tf 72 720 Td (${escaped}) Tj ET${' '.repeat(extra)}`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  if (fill > 0) objects.push(`<< /Length ${fill} >>\nstream\n${'0'.repeat(fill)}\nendstream`);
  const parts: Buffer[] = [Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let offset = parts[0]!.length;
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(offset);
    const b = Buffer.from(`${i + 1} 0 obj\n${body}\nendobj\n`, 'latin1');
    parts.push(b);
    offset += b.length;
  });
  const xref =
    `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n` +
    offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('') +
    `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${offset}\n%%EOF\n`;
  parts.push(Buffer.from(xref, 'latin1'));
  return Buffer.concat(parts);
}
