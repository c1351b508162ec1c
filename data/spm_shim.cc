// The extern "C" side of data/spm_shim.h over sentencepiece::SentencePieceProcessor: the project's only C++ file,
// kept this thin so that everything that can be C (ALBERT's preprocessing, the piece rules, specials) is C.
// Every entry point catches all exceptions (std::bad_alloc from the library or the STL included): none may unwind
// into C frames.
#include "data/spm_shim.h"

#include <sentencepiece_processor.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

struct spm_model {
  sentencepiece::SentencePieceProcessor sp;
  int unk; /* PieceToId's answer for a non-piece, kept for the (unreachable) failure path */
};

static void set_err(char *err, size_t errlen, const char *what) {
  if (err && errlen) std::snprintf(err, errlen, "%s", what);
}

extern "C" spm_model *spm_load(const void *bytes, size_t len, char *err, size_t errlen) {
  spm_model *m = nullptr;
  try {
    m = new spm_model;
    auto st = m->sp.LoadFromSerializedProto(std::string_view(static_cast<const char *>(bytes), len));
    if (st.ok()) {
      m->unk = m->sp.unk_id();
      return m;
    }
    set_err(err, errlen, st.error_message());
  } catch (const std::exception &ex) {
    set_err(err, errlen, ex.what());
  } catch (...) {
    set_err(err, errlen, "unknown C++ exception in libsentencepiece");
  }
  delete m;
  return nullptr;
}

extern "C" void spm_free(spm_model *m) { delete m; }

extern "C" int spm_piece_size(const spm_model *m) {
  try {
    return m->sp.GetPieceSize();
  } catch (...) {
    return 0;
  }
}

extern "C" int spm_piece_to_id(const spm_model *m, const char *piece, size_t len) {
  try {
    return m->sp.PieceToId(std::string_view(piece, len));
  } catch (...) {
    return m->unk;
  }
}

extern "C" const char *spm_id_to_piece(const spm_model *m, int id) {
  try {
    return m->sp.IdToPiece(id).c_str();
  } catch (...) {
    return "";
  }
}

extern "C" int spm_encode(const spm_model *m, const char *text, size_t len,
                          void (*emit)(void *ctx, const char *piece, size_t n), void *ctx, char *err, size_t errlen) {
  try {
    std::vector<std::string> pieces;
    auto st = m->sp.Encode(std::string_view(text, len), &pieces);
    if (!st.ok()) {
      set_err(err, errlen, st.error_message());
      return -1;
    }
    for (const std::string &p : pieces) emit(ctx, p.data(), p.size());
    return 0;
  } catch (const std::exception &ex) {
    set_err(err, errlen, ex.what());
  } catch (...) {
    set_err(err, errlen, "unknown C++ exception in libsentencepiece");
  }
  return -1;
}
