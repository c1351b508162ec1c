/* A thin C interface to Debian's libsentencepiece (sentencepiece::SentencePieceProcessor, C++), so that the rest of
 * the project stays C11. data/spm_shim.cc is its only implementation and the project's only C++ file. No C++
 * exception ever crosses it: every function catches everything and reports in its return value.
 * A loaded model is immutable; the library's encoding is const and thread-safe, so threads may share one. */
#ifndef EPEE_DATA_SPM_SHIM_H
#define EPEE_DATA_SPM_SHIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spm_model spm_model;

/* Loads a serialized ModelProto (a .model file's bytes). NULL on failure, with the library's reason in
 * err[errlen] (one line, no file name). */
spm_model *spm_load(const void *bytes, size_t len, char *err, size_t errlen);
void spm_free(spm_model *m);

int spm_piece_size(const spm_model *m);
/* The id of piece[0..len), or the model's unknown id when it is not a piece. */
int spm_piece_to_id(const spm_model *m, const char *piece, size_t len);
/* The text of id (0 <= id < spm_piece_size): valid as long as the model. */
const char *spm_id_to_piece(const spm_model *m, int id);

/* Encodes text[0..len) with the model's own normalizer and calls emit(ctx, piece, piece_len) for each piece
 * in order (an unknown piece comes as its surface text). emit must return normally. 0, or -1 with err set. */
int spm_encode(const spm_model *m, const char *text, size_t len, void (*emit)(void *ctx, const char *piece, size_t n),
               void *ctx, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
