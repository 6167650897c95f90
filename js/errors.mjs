// Errors polyonnx throws. Each names the stage, the thing, and what to do next, like
// python/polyonnx/errors.py; `code` is the stable string to branch on (messages may be reworded).
// No Node-only imports: the browser build reuses this module.

class PolyonnxError extends Error {
  /**
   * @param {string} stage   'load' | 'run' | 'dispose'
   * @param {string} message what went wrong, with which thing
   * @param {string} [fix]   what to do next
   * @param {{code?: string, details?: object, cause?: unknown}} [extra]
   */
  constructor(stage, message, fix, extra = {}) {
    super(fix ? `${stage}: ${message} -- ${fix}` : `${stage}: ${message}`,
      extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = new.target.name;
    this.code = extra.code || new.target.code;
    this.stage = stage;
    this.reason = message;
    this.fix = fix || null;
    this.details = extra.details || {};
  }
}
PolyonnxError.code = 'E_POLYONNX';

/** polyonnx.json is missing, malformed, or does not match shared-schemas/manifest.schema.json. */
class ManifestError extends PolyonnxError {}
ManifestError.code = 'E_MANIFEST';

/** A bundle file is missing, outside the bundle, or differs from its recorded size/sha256. */
class IntegrityError extends PolyonnxError {}
IntegrityError.code = 'E_INTEGRITY';

/** The variant needs more than the installed runtime offers (opset, IR, domain, version, provider). */
class CompatibilityError extends PolyonnxError {}
CompatibilityError.code = 'E_COMPAT';

/** A feed is missing, unknown, or has the wrong dtype, rank, dims or values. */
class FeedError extends PolyonnxError {}
FeedError.code = 'E_FEED';

/** ONNX Runtime itself failed (session creation or run); the original error is `cause`. */
class SessionError extends PolyonnxError {}
SessionError.code = 'E_SESSION';

// Codes of plain PolyonnxErrors (no subclass of their own).
const CODES = Object.freeze({
  VARIANT: 'E_VARIANT', // the bundle has no such variant
  OPTIONS: 'E_OPTIONS', // an unknown or ill-typed option, an unknown output name
  DISPOSED: 'E_DISPOSED', // the model was disposed
  ABORTED: 'E_ABORTED', // the caller's AbortSignal fired (load, model.run, pool.run)
  PROVIDER: 'E_PROVIDER', // an execution provider asked for is missing or cannot start (a CompatibilityError)
});

export { PolyonnxError, ManifestError, IntegrityError, CompatibilityError, FeedError, SessionError, CODES };
