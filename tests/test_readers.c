/* Dataset reader tests: TSV and JSON Lines, label handling, and one-line file:line errors.
 * Fixture files are written into a mkdtemp directory and removed at the end. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"

static char dir[64];
#define MAX_FIXTURES 96
static char written[MAX_FIXTURES][128];
static int n_written;

static int suite_init(void) {
  strcpy(dir, "/tmp/epee_readers_XXXXXX");
  return mkdtemp(dir) ? 0 : 1;
}
static int suite_clean(void) {
  for (int i = 0; i < n_written; i++) unlink(written[i]);
  return rmdir(dir);
}

/* Writes len bytes of content to dir/name (len < 0: strlen) and returns the path (valid until the next call
 * with the same name). */
static const char *fixture(const char *name, const char *content, long len) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int k = 0;
  while (k < n_written && strcmp(written[k], path)) k++;
  CU_ASSERT_FATAL(k < MAX_FIXTURES);
  if (k == n_written) strcpy(written[n_written++], path);
  FILE *f = fopen(path, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fwrite(content, 1, len < 0 ? strlen(content) : (size_t)len, f);
  fclose(f);
  return written[k];
}

static const ds_columns TEXT_LABEL = {"text", NULL, "label", 0, NULL};

/* Reads content as file name and expects failure with message "<path>:<suffix>" exactly. */
static void expect_error(const char *name, const char *content, const ds_columns *cols, char *const *known,
                         int n_known, const char *suffix) {
  const char *path = fixture(name, content, -1);
  ds_raw d;
  epee_err e = {{0}};
  CU_ASSERT_EQUAL(ds_read(path, cols, known, n_known, &d, &e), -1);
  char want[512];
  snprintf(want, sizeof want, "%s:%s", path, suffix);
  if (strcmp(e.msg, want)) fprintf(stderr, "\n  got  \"%s\"\n  want \"%s\"\n", e.msg, want);
  CU_ASSERT_STRING_EQUAL(e.msg, want);
  CU_ASSERT_EQUAL(d.n, 0); /* nothing left allocated after an error */
  CU_ASSERT_PTR_NULL(d.texts);
}

static void test_tsv_basic(void) {
  const char *p = fixture("train.tsv", "text\tlabel\nhello\tB\nworld\tA\n\nfoo bar\tB\r\n", -1);
  ds_raw d;
  epee_err e;
  CU_ASSERT_EQUAL_FATAL(ds_read(p, &TEXT_LABEL, NULL, 0, &d, &e), 0);
  CU_ASSERT_EQUAL(d.n, 3); /* the blank line is skipped */
  CU_ASSERT_EQUAL(d.n_labels, 2);
  CU_ASSERT_STRING_EQUAL(d.label_names[0], "A");
  CU_ASSERT_STRING_EQUAL(d.label_names[1], "B");
  CU_ASSERT_STRING_EQUAL(d.texts[0], "hello");
  CU_ASSERT_STRING_EQUAL(d.texts[2], "foo bar"); /* "\r\n" stripped */
  CU_ASSERT(d.labels[0] == 1 && d.labels[1] == 0 && d.labels[2] == 1);
  CU_ASSERT_PTR_NULL(d.texts_b);
  ds_raw_free(&d);
}

static void test_tsv_pair_columns(void) {
  /* columns in any order, extra columns ignored, empty text allowed */
  const char *p = fixture("pair.tsv", "id\tlabel\ttext_b\ttext\n1\tisa\tparent one\tchild one\n2\tpart_of\tp2\t\n", -1);
  ds_columns c = {"text", "text_b", "label", 0, NULL};
  ds_raw d;
  epee_err e;
  CU_ASSERT_EQUAL_FATAL(ds_read(p, &c, NULL, 0, &d, &e), 0);
  CU_ASSERT_EQUAL(d.n, 2);
  CU_ASSERT_STRING_EQUAL(d.texts[0], "child one");
  CU_ASSERT_STRING_EQUAL(d.texts_b[0], "parent one");
  CU_ASSERT_STRING_EQUAL(d.texts[1], "");
  CU_ASSERT_STRING_EQUAL(d.texts_b[1], "p2");
  CU_ASSERT(d.labels[0] == 0 && d.labels[1] == 1); /* isa < part_of */
  ds_raw_free(&d);
}

static void test_label_discovery_sorted(void) {
  const char *p = fixture("labels.tsv", "label\ttext\nb\tx\nB\tx\na\tx\n10\tx\n2\tx\nb\tx\n", -1);
  ds_raw d;
  epee_err e;
  CU_ASSERT_EQUAL_FATAL(ds_read(p, &TEXT_LABEL, NULL, 0, &d, &e), 0);
  const char *want[] = {"10", "2", "B", "a", "b"}; /* strcmp order: digits < upper < lower */
  CU_ASSERT_EQUAL_FATAL(d.n_labels, 5);
  for (int k = 0; k < 5; k++) CU_ASSERT_STRING_EQUAL(d.label_names[k], want[k]);
  const int lab[] = {4, 2, 3, 0, 1, 4};
  for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(d.labels[i], lab[i]);
  ds_raw_free(&d);
}

static void test_known_labels(void) {
  char *known[] = {"pos", "neg"};
  const char *p = fixture("dev.tsv", "text\tlabel\nx\tneg\ny\tpos\n", -1);
  ds_raw d;
  epee_err e;
  CU_ASSERT_EQUAL_FATAL(ds_read(p, &TEXT_LABEL, known, 2, &d, &e), 0);
  CU_ASSERT(d.n_labels == 2 && !strcmp(d.label_names[0], "pos") && !strcmp(d.label_names[1], "neg"));
  CU_ASSERT(d.labels[0] == 1 && d.labels[1] == 0); /* the given order, not sorted */
  ds_raw_free(&d);
}

static void test_missing_labels(void) {
  ds_columns allow = {"text", NULL, "label", 1, NULL};
  char *known[] = {"A", "B"};
  const char *p = fixture("infer.tsv", "text\nfirst\nsecond\n", -1);
  ds_raw d;
  epee_err e;
  CU_ASSERT_EQUAL_FATAL(ds_read(p, &allow, known, 2, &d, &e), 0);
  CU_ASSERT(d.n == 2 && d.labels[0] == -1 && d.labels[1] == -1 && d.n_labels == 2);
  ds_raw_free(&d);
  CU_ASSERT_EQUAL_FATAL(ds_read(p, &allow, NULL, 0, &d, &e), 0);
  CU_ASSERT(d.n == 2 && d.labels[0] == -1 && d.n_labels == 0);
  ds_raw_free(&d);
  expect_error("infer2.tsv", "text\nfirst\n", &TEXT_LABEL, NULL, 0,
               "1: no column 'label' in the header (columns: text)");
}

static void test_tsv_errors(void) {
  char *known[] = {"A", "B", "C"};
  expect_error("cols.tsv", "text\tlabel\na\tA\nb\n", &TEXT_LABEL, NULL, 0,
               "3: 1 tab-separated fields, expected 2 as in the header");
  expect_error("cols2.tsv", "text\tlabel\na\tA\tx\n", &TEXT_LABEL, NULL, 0,
               "2: 3 tab-separated fields, expected 2 as in the header");
  expect_error("unknown.tsv", "text\tlabel\na\tA\n\nb\tD\n", &TEXT_LABEL, known, 3,
               "4: unknown label 'D' (known: A, B, C)");
  expect_error("utf8.tsv", "text\tlabel\na\tA\nb\xff\tB\n", &TEXT_LABEL, NULL, 0, "3: invalid UTF-8 at byte 2 of the line");
  expect_error("utf8b.tsv", "text\tlabel\n\xe2\x82\tA\n", &TEXT_LABEL, NULL, 0, "2: invalid UTF-8 at byte 1 of the line");
  expect_error("empty.tsv", "", &TEXT_LABEL, NULL, 0,
               "1: empty file (expected a tab-separated header line naming the columns)");
  expect_error("blank.tsv", "\n\r\n", &TEXT_LABEL, NULL, 0,
               "1: empty file (expected a tab-separated header line naming the columns)");
  expect_error("header.tsv", "text\tlabel\n", &TEXT_LABEL, NULL, 0, "2: no examples after the header");
  expect_error("missing.tsv", "txt\tlabel\nx\tA\n", &TEXT_LABEL, NULL, 0,
               "1: no column 'text' in the header (columns: txt, label)");
  expect_error("twice.tsv", "text\ttext\tlabel\nx\ty\tA\n", &TEXT_LABEL, NULL, 0,
               "1: column 'text' appears twice in the header");
  expect_error("emptylabel.tsv", "text\tlabel\nx\tA\ny\t\n", &TEXT_LABEL, NULL, 0, "3: empty label");
  char *dup[] = {"A", "B", "A"};
  expect_error("dup.tsv", "text\tlabel\nx\tA\n", &TEXT_LABEL, dup, 3, " the label list given for it names 'A' twice");
  const char nul[] = "text\tlabel\nx\0y\tA\n";
  const char *p = fixture("nul.tsv", nul, sizeof nul - 1);
  ds_raw d;
  epee_err e;
  CU_ASSERT_EQUAL(ds_read(p, &TEXT_LABEL, NULL, 0, &d, &e), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "nul.tsv:2: NUL byte"));
  CU_ASSERT_EQUAL(ds_read("/nonexistent/x.tsv", &TEXT_LABEL, NULL, 0, &d, &e), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "/nonexistent/x.tsv: cannot open"));
}

static void test_jsonl(void) {
  const char *p = fixture("a.jsonl",
                          "{\"text\": \"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\ud83d\\ude00\", \"label\": 1}\n"
                          "\n"
                          "  {\"label\":2.5e3,\"id\":null,\"text\":\"y\"}  \r\n"
                          "{\"text\": \"caf\xc3\xa9 \\u4e2d\", \"meta\": {\"k\": [1, null]}, \"label\": -0.5}\n",
                          -1);
  ds_raw d;
  epee_err e;
  if (ds_read(p, &TEXT_LABEL, NULL, 0, &d, &e)) fprintf(stderr, "\n  %s\n", e.msg);
  CU_ASSERT_EQUAL_FATAL(d.n, 3);
  CU_ASSERT_STRING_EQUAL(d.texts[0], "a\"b\\c/d\n\t\xc3\xa9\xf0\x9f\x98\x80"); /* é U+00E9, U+1F600 */
  CU_ASSERT_STRING_EQUAL(d.texts[1], "y");
  CU_ASSERT_STRING_EQUAL(d.texts[2], "caf\xc3\xa9 \xe4\xb8\xad");              /* U+4E2D */
  CU_ASSERT_EQUAL_FATAL(d.n_labels, 3);
  CU_ASSERT_STRING_EQUAL(d.label_names[0], "-0.5");
  CU_ASSERT_STRING_EQUAL(d.label_names[1], "1");
  CU_ASSERT_STRING_EQUAL(d.label_names[2], "2500"); /* a number's shortest text: 2.5e3 and 2500 are one label */
  CU_ASSERT(d.labels[0] == 1 && d.labels[1] == 2 && d.labels[2] == 0);
  ds_raw_free(&d);
}

static void test_jsonl_errors(void) {
  expect_error("s.jsonl", "{\"text\": \"ok\", \"label\": \"A\"}\n{\"text\": \"\\ud800x\", \"label\": \"A\"}\n", &TEXT_LABEL,
               NULL, 0, "2:18: invalid Unicode '\\uD800' near '\"\\ud800x\"'");
  expect_error("lo.jsonl", "{\"text\": \"\\udc00\", \"label\": \"A\"}\n", &TEXT_LABEL, NULL, 0,
               "1:17: invalid Unicode '\\uDC00' near '\"\\udc00\"'");
  expect_error("nest.jsonl", "{\"text\": {\"a\": 1}, \"label\": \"A\"}\n", &TEXT_LABEL, NULL, 0,
               "1: value of \"text\" is an object; expected a string");
  expect_error("lab.jsonl", "{\"text\": \"a\", \"label\": [\"A\"]}\n", &TEXT_LABEL, NULL, 0,
               "1: value of \"label\" is an array; expected a string, a number or true/false");
  expect_error("key.jsonl", "{\"txt\": \"a\", \"label\": \"A\"}\n", &TEXT_LABEL, NULL, 0, "1: no key \"text\" in the object");
  expect_error("null.jsonl", "{\"text\": \"a\", \"label\": null}\n", &TEXT_LABEL, NULL, 0,
               "1: no key \"label\" in the object");
  expect_error("num.jsonl", "{\"text\": \"a\", \"label\": 01}\n", &TEXT_LABEL, NULL, 0, "1:24: invalid token near '0'");
  expect_error("trail.jsonl", "{\"text\": \"a\", \"label\": \"A\"} x\n", &TEXT_LABEL, NULL, 0,
               "1:29: end of file expected near 'x'");
  expect_error("esc.jsonl", "{\"text\": \"a\\q\", \"label\": \"A\"}\n", &TEXT_LABEL, NULL, 0,
               "1:13: invalid escape near '\"a\\q'");
  expect_error("ctl.jsonl", "{\"text\": \"a\tb\", \"label\": \"A\"}\n", &TEXT_LABEL, NULL, 0,
               "1:11: control character 0x9 near '\"a'");
  expect_error("open.jsonl", "{\"text\": \"a\n", &TEXT_LABEL, NULL, 0, "1:11: premature end of input near '\"a'");
  expect_error("arr.jsonl", "[1, 2]\n", &TEXT_LABEL, NULL, 0, "1: expected one JSON object per line, found an array");
  expect_error("empty.jsonl", "\n\n", &TEXT_LABEL, NULL, 0, "1: empty file (expected one JSON object per line)");
  expect_error("mixed.jsonl", "{\"text\": \"a\", \"label\": \"A\"}\n\n{\"text\": \"b\"}\n", &TEXT_LABEL, NULL, 0,
               "3: lacks key \"label\" which was present on line 1");
  char *known[] = {"A"};
  expect_error("unk.jsonl", "{\"text\": \"a\", \"label\": \"A\"}\n{\"text\": \"b\", \"label\": \"Z\"}\n", &TEXT_LABEL, known,
               1, "2: unknown label 'Z' (known: A)");
  expect_error("unk_nl.jsonl", "{\"text\": \"b\", \"label\": \"Z\\nfake line\"}\n", &TEXT_LABEL, known, 1,
               "1: unknown label 'Z?fake line' (known: A)"); /* an echoed newline would make two lines */
  expect_error("bad.jsonl", "{\"text\": \"\xc3\", \"label\": \"A\"}\n", &TEXT_LABEL, NULL, 0,
               "1: invalid UTF-8 at byte 11 of the line");
  expect_error("dup.jsonl", "{\"text\": \"a\", \"label\": \"A\"}\n{\"text\": \"x\", \"label\": \"A\", \"text\": \"y\"}\n",
               &TEXT_LABEL, NULL, 0, "2:34: duplicate object key near '\"text\"'");
  expect_error("numtext.jsonl", "{\"text\": 42, \"label\": \"A\"}\n", &TEXT_LABEL, NULL, 0,
               "1: value of \"text\" is 42; expected a string");
  const ds_columns pair = {"text", "text_b", "label", 0, NULL};
  expect_error("booltext.jsonl", "{\"text\": \"a\", \"text_b\": true, \"label\": \"A\"}\n", &pair, NULL, 0,
               "1: value of \"text_b\" is true; expected a string");
}

/* A UTF-8 byte order mark (Windows editors write one) is not part of the first column name or key. */
static void test_bom(void) {
  const char *files[][2] = {{"bom.tsv", "\xEF\xBB\xBFtext\tlabel\nhello\tA\n"},
                            {"bom.jsonl", "\xEF\xBB\xBF{\"text\": \"hello\", \"label\": \"A\"}\n"}};
  for (int k = 0; k < 2; k++) {
    ds_raw d;
    epee_err e = {{0}};
    int rc = ds_read(fixture(files[k][0], files[k][1], -1), &TEXT_LABEL, NULL, 0, &d, &e);
    if (rc) fprintf(stderr, "\n  %s\n", e.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(d.n == 1 && !strcmp(d.texts[0], "hello") && !strcmp(d.label_names[0], "A"));
    ds_raw_free(&d);
  }
}

void epee_register_tests(void) {
  CU_pSuite s = CU_add_suite("dataset readers", suite_init, suite_clean);
  CU_add_test(s, "TSV basic", test_tsv_basic);
  CU_add_test(s, "TSV pair columns", test_tsv_pair_columns);
  CU_add_test(s, "label discovery sorted", test_label_discovery_sorted);
  CU_add_test(s, "known label list", test_known_labels);
  CU_add_test(s, "missing labels for inference", test_missing_labels);
  CU_add_test(s, "TSV errors name file:line", test_tsv_errors);
  CU_add_test(s, "JSONL escapes and values", test_jsonl);
  CU_add_test(s, "JSONL errors name file:line:col", test_jsonl_errors);
  CU_add_test(s, "a UTF-8 BOM is skipped", test_bom);
}
