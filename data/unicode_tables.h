/* Unicode character classes for the tokenizers (internal to data/). The tables are generated
 * by data/gen_unicode_tables.py from Python's unicodedata, so that our text normalisation matches what
 * HuggingFace's BertTokenizer computes at run time, and (js_*) from node's regexp, as GPT-2's Encoder.js sees it. */
#ifndef EPEE_DATA_UNICODE_TABLES_H
#define EPEE_DATA_UNICODE_TABLES_H

#include <stdint.h>

typedef struct {
  uint32_t lo, hi; /* inclusive */
} uc_range;

/* 1 if c lies in one of the n sorted, disjoint ranges r (binary search). */
static inline int uc_in(const uc_range *r, int n, uint32_t c) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (c < r[mid].lo) hi = mid - 1;
    else if (c > r[mid].hi) lo = mid + 1;
    else return 1;
  }
  return 0;
}

/* c -> strip_Mn(NFD(lower(c))), 1..3 code points, for code points where that differs from c. */
typedef struct {
  uint32_t cp;
  uint8_t n;
  uint32_t out[3];
} uc_fold_entry;

extern const uc_range uc_control[], uc_space[], uc_punct[], uc_mn[], uc_cased[], uc_case_ignorable[];
extern const int uc_control_n, uc_space_n, uc_punct_n, uc_mn_n, uc_cased_n, uc_case_ignorable_n;
/* GPT-2's pre-tokenisation classes as node's regexp has them: \p{L}, \p{N}, \s (data/bpe.c). */
extern const uc_range uc_js_letter[], uc_js_number[], uc_js_space[];
extern const int uc_js_letter_n, uc_js_number_n, uc_js_space_n;
extern const uc_fold_entry uc_fold[];
extern const int uc_fold_n;

#endif
