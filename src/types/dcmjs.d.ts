// dcmjs ships no type definitions: the part of its API this project uses, typed once for src/ and test/.
declare module 'dcmjs' {
  interface DicomElement {
    vr: string;
    Value?: unknown[];
  }
  type DicomElements = Record<string, DicomElement>;

  interface DicomDict {
    meta: DicomElements;
    dict: DicomElements;
    write(options?: { allowInvalidVRLength?: boolean; fragmentMultiframe?: boolean }): ArrayBuffer;
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
        uid(): string;
      };
    };
  };
  export default dcmjs;
}
