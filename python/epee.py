"""EPEE-C from Python: the inference library libepee.so through ctypes (no compiled extension, no pip).

    import epee
    m = epee.Model("runs/bert_go/model.h5")
    r = m.classify(["The chemical reactions involving glucose.", "Any process that ..."])
    r.labels        # ['BP', 'BP']: the class of each input
    r.probabilities # [[0.97, 0.02, 0.01], ...]: softmax of the exit that answered, in m.label_names order
    r.exit_layers   # [1, 2]: layers run before the input left (1 .. m.num_layers)

The library is found as $EPEE_LIBRARY, else next to this file's install prefix (PREFIX/lib, when installed
by `cmake --install` into PREFIX/share/epee/python), else by the dynamic loader (libepee.so.0).
A Model owns one session: use one Model per thread.
"""
import ctypes
import os

__all__ = ["Model", "Result", "EpeeError", "version"]


class EpeeError(RuntimeError):
    """A model file or an input the library refused; the message is the library's one line."""


def _load_library():
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("EPEE_LIBRARY"),
                  os.path.join(here, "..", "..", "..", "lib", "libepee.so.0"), "libepee.so.0"]
    errors = []
    for path in filter(None, candidates):
        try:
            return ctypes.CDLL(path)
        except OSError as exc:
            errors.append(str(exc))
    raise EpeeError("libepee.so not found (set EPEE_LIBRARY): " + "; ".join(errors))


_lib = _load_library()


class _Policy(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("tau", ctypes.c_float), ("patience", ctypes.c_int)]


def _declare(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype, f.argtypes = restype, list(argtypes)
    return f


_P = ctypes.c_void_p
_version = _declare("epee_version", ctypes.c_char_p)
_load = _declare("epee_model_load", _P, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t)
_model_free = _declare("epee_model_free", None, _P)
_num_labels = _declare("epee_model_num_labels", ctypes.c_int, _P)
_label = _declare("epee_model_label", ctypes.c_char_p, _P, ctypes.c_int)
_num_layers = _declare("epee_model_num_layers", ctypes.c_int, _P)
_policy = _declare("epee_model_policy", _Policy, _P)
_session_new = _declare("epee_session_new", _P, _P, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
_session_free = _declare("epee_session_free", None, _P)
_session_error = _declare("epee_session_error", ctypes.c_char_p, _P)
_classify = _declare("epee_classify_texts", ctypes.c_int, _P, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p),
                     ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(_Policy), ctypes.POINTER(ctypes.c_int),
                     ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float))


def version():
    """The library's version, "MAJOR.MINOR.PATCH"."""
    return _version().decode()


class Result:
    """Per input, in input order: labels (class names), probabilities (one list per input, in the model's
    label_names order) and exit_layers (layers run, 1-based)."""

    def __init__(self, labels, probabilities, exit_layers):
        self.labels, self.probabilities, self.exit_layers = labels, probabilities, exit_layers

    def __repr__(self):
        return f"Result(labels={self.labels!r}, exit_layers={self.exit_layers!r})"


class Model:
    """A model file written by epee-train, with its calibrated exit policy."""

    def __init__(self, path, max_batch=64):
        err = ctypes.create_string_buffer(1024)
        self._m = _load(os.fsencode(path), err, len(err))
        if not self._m:
            raise EpeeError(err.value.decode(errors="replace"))
        self._s = _session_new(self._m, max_batch, err, len(err))
        if not self._s:
            _model_free(self._m)
            self._m = None
            raise EpeeError(err.value.decode(errors="replace"))
        self.label_names = [_label(self._m, i).decode() for i in range(_num_labels(self._m))]
        self.num_layers = _num_layers(self._m)
        p = _policy(self._m)
        self.policy = (p.name.decode(), p.tau, p.patience)

    def classify(self, texts, texts_b=None, policy=None, tau=None, patience=None):
        """Classifies a list of str (texts_b: second segments of a pair task). policy / tau / patience override
        the calibrated policy for this call (policy: none, entropy, patience, epee or pcee)."""
        n, C = len(texts), len(self.label_names)
        if texts_b is not None and len(texts_b) != n:
            raise ValueError(f"texts_b has {len(texts_b)} entries for {n} texts")
        enc = (ctypes.c_char_p * max(n, 1))(*[t.encode() for t in texts])
        enc_b = (ctypes.c_char_p * max(n, 1))(*[t.encode() for t in texts_b]) if texts_b is not None else None
        pol = None
        if policy is not None or tau is not None or patience is not None:
            name, t, p = self.policy
            pol = ctypes.byref(_Policy((policy or name).encode(), t if tau is None else tau,
                                       p if patience is None else patience))
        labels, layers = (ctypes.c_int * max(n, 1))(), (ctypes.c_int * max(n, 1))()
        probs = (ctypes.c_float * max(n * C, 1))()
        if n and _classify(self._s, n, enc, enc_b, pol, labels, layers, probs, None):
            raise EpeeError(_session_error(self._s).decode(errors="replace"))
        return Result([self.label_names[labels[i]] for i in range(n)],
                      [[probs[i * C + c] for c in range(C)] for i in range(n)], [layers[i] for i in range(n)])

    def close(self):
        if getattr(self, "_s", None):
            _session_free(self._s)
            self._s = None
        if getattr(self, "_m", None):
            _model_free(self._m)
            self._m = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
