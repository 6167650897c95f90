// ORT-format variants (`polyonnx export --edge`): ONNX Runtime's own flatbuffer format, for its
// minimal builds. Such a file has no ONNX protobuf header for onnx-header.mjs to read, so the
// opset, IR version and domains that compat.mjs checks come from the manifest (checkVariant, run
// on every load before any file is read); what is checked here is only that the bytes are an
// ORT-format model at all. ONNX Runtime itself tells the formats apart by the same identifier
// when it is given bytes (onnxruntime-node and -web 1.30 load ORT-format files converted by
// ONNX Runtime 1.32, measured 2026-11-30).

import { ManifestError } from './errors.mjs';

// The flatbuffer file identifier of onnxruntime's ort.fbs, at bytes 4..8 of every ORT-format file.
const ORT_IDENTIFIER = [0x4f, 0x52, 0x54, 0x4d]; // 'ORTM'

/** Whether `bytes` (a Uint8Array) start like an ORT-format model. */
function isOrtFormat(bytes) {
  return bytes.length >= 8 && ORT_IDENTIFIER.every((b, i) => bytes[4 + i] === b);
}

/** Refuse a variant recorded as format 'ort' whose file is not one (the manifest names the wrong file). */
function checkOrtModel(bytes, variantName, variant, bundleName) {
  if (!isOrtFormat(bytes)) {
    throw new ManifestError('load',
      `variant '${variantName}' of bundle '${bundleName}': polyonnx.json records '${variant.file}' as an ORT-format `
      + "model, but it lacks the ORT format's 'ORTM' identifier",
      'the manifest was written for another file: re-export the bundle with --edge',
      { details: { variant: variantName, file: variant.file } });
  }
}

export { isOrtFormat, checkOrtModel };
