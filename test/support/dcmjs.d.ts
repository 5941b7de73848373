// Minimal, test-only typing for dcmjs (the package ships no type definitions).
// Only what the test suite uses. If a src/types/dcmjs.d.ts is added and both files end up in
// the same TypeScript program, keep one of them (two `declare module 'dcmjs'` blocks clash).
declare module 'dcmjs' {
  interface DicomElement {
    vr: string;
    Value?: unknown[];
  }
  type DicomElements = Record<string, DicomElement>;

  interface DicomDict {
    meta: DicomElements;
    dict: DicomElements;
    write(options?: { allowInvalidVRLength?: boolean }): ArrayBuffer;
  }

  const dcmjs: {
    data: {
      DicomMessage: {
        readFile(buffer: ArrayBuffer, options?: Record<string, unknown>): DicomDict;
      };
      DicomDict: new (meta: DicomElements) => DicomDict;
      DicomMetaDictionary: {
        naturalizeDataset(dataset: DicomElements): Record<string, unknown>;
        denaturalizeDataset(dataset: Record<string, unknown>): DicomElements;
      };
    };
  };
  export default dcmjs;
}
