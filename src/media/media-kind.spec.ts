import { describe, expect, it } from 'vitest';
import { classifyMedia, mayHoldMedia, mediaClaim, mediaFileName, parseMediaClaim } from './media-kind.js';

const SC = '1.2.840.10008.5.1.4.1.1.7';
const VIDEO_ENDO = '1.2.840.10008.5.1.4.1.1.77.1.1.1';
const CT = '1.2.840.10008.5.1.4.1.1.2';

describe('media kinds', () => {
  it('tells media from the SOP Class and transfer syntax', () => {
    expect(classifyMedia({ sopClassUid: '1.2.840.10008.5.1.4.1.1.104.1' })).toEqual({ kind: 'pdf' });
    expect(classifyMedia({ sopClassUid: SC, transferSyntaxUid: '1.2.840.10008.1.2.4.50' })).toEqual({ kind: 'jpeg' });
    expect(classifyMedia({ sopClassUid: SC, transferSyntaxUid: '1.2.840.10008.1.2.4.50', numberOfFrames: 3 })).toBeUndefined();
    expect(classifyMedia({ sopClassUid: SC, transferSyntaxUid: '1.2.840.10008.1.2.4.70' })).toBeUndefined(); // lossless JPEG
    expect(classifyMedia({ sopClassUid: CT, transferSyntaxUid: '1.2.840.10008.1.2.4.50' })).toBeUndefined(); // a diagnostic image
    for (const ts of ['102', '103', '104', '105', '106']) expect(classifyMedia({ sopClassUid: VIDEO_ENDO, transferSyntaxUid: `1.2.840.10008.1.2.4.${ts}` })).toEqual({ kind: 'video' });
    for (const ts of ['100', '101', '107', '108']) expect(classifyMedia({ sopClassUid: VIDEO_ENDO, transferSyntaxUid: `1.2.840.10008.1.2.4.${ts}` })).toHaveProperty('excluded');
    expect(classifyMedia({ sopClassUid: VIDEO_ENDO })).toEqual({ needsTransferSyntax: true });
    expect(classifyMedia({ sopClassUid: CT })).toBeUndefined();
    expect(classifyMedia({})).toBeUndefined();
  });

  it('names files from descriptions, safely', () => {
    expect(mediaFileName('pdf', { seriesDescription: 'Report 1/2: "final"', documentTitle: 'x' })).toBe('Report 1 2 final.pdf');
    expect(mediaFileName('jpeg', { documentTitle: '..hidden' })).toBe('hidden.jpg');
    expect(mediaFileName('video', { instanceNumber: 4 })).toBe('video 4.mp4');
    expect(mediaFileName('pdf', {})).toBe('document.pdf');
  });

  it('carries kind and archive id in the link claim', () => {
    expect(parseMediaClaim(mediaClaim('video', 'ab-cd'))).toEqual({ kind: 'video', pacsId: 'ab-cd' });
    expect(parseMediaClaim(mediaClaim('pdf'))).toEqual({ kind: 'pdf', pacsId: undefined });
    expect(parseMediaClaim('exe:1')).toBeUndefined();
    expect(mayHoldMedia('CT')).toBe(false);
    expect(mayHoldMedia('es')).toBe(true);
    expect(mayHoldMedia(undefined)).toBe(true);
  });
});
