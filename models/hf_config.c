/* HF config.json <-> model_config, driven by each registry row's hf_keys: one table serves import and export. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "models/model.h"

const model_arch *model_find_hf_type(const char *t) {
  for (int i = 0; t && model_arch_names[i]; i++) {
    const model_arch *a = model_find_arch(model_arch_names[i]);
    if (!strcmp(a->hf_model_type, t)) return a;
  }
  return NULL;
}

static void *field_slot(model_config *c, int f) { return (char *)c + model_fields[f].offset; }

/* The JSON value as text for comparing with hf_key.is: a string unquoted, true/false, a number as %g. */
static void value_text(const json_t *v, char *out, size_t n) {
  if (json_is_string(v)) snprintf(out, n, "%s", json_string_value(v));
  else if (json_is_boolean(v)) snprintf(out, n, "%s", json_is_true(v) ? "true" : "false");
  else if (json_is_number(v)) snprintf(out, n, "%g", json_number_value(v));
  else snprintf(out, n, "(%s)", json_is_array(v) ? "an array" : "an object");
}

/* x into field f, inside the field's range (whole for an int field). */
static int set_number(model_config *c, int f, double x, const char *key, const char *where, epee_err *e) {
  const model_field *mf = &model_fields[f];
  if (!(x >= mf->lo && x <= mf->hi) || (mf->type == MFT_INT && x != floor(x)))
    return epee_errf(e, "%s: \"%s\" is %g; expected %s in [%g, %g] (model %s)", where, key, x,
                     mf->type == MFT_INT ? "a whole number" : "a value", mf->lo, mf->hi, mf->name);
  if (mf->type == MFT_FLOAT) *(float *)field_slot(c, f) = (float)x;
  else *(int *)field_slot(c, f) = (int)x;
  return 0;
}

/* One value into field f: a number for a number field, a bool for a bool field. */
static int set_field(model_config *c, int f, const json_t *v, const char *key, const char *where, epee_err *e) {
  const model_field *mf = &model_fields[f];
  if (mf->type == MFT_BOOL ? !json_is_boolean(v) : !json_is_number(v))
    return epee_errf(e, "%s: \"%s\": expected %s", where, key, mf->type == MFT_BOOL ? "true or false" : "a number");
  return set_number(c, f, mf->type == MFT_BOOL ? json_is_true(v) : json_number_value(v), key, where, e);
}

int hf_config_read(const model_arch *a, const json_t *root, const char *where, model_config *c, unsigned *from_file,
                   epee_err *e) {
  *from_file = 0;
  if (!json_is_object(root)) return epee_errf(e, "%s: expected a JSON object", where);
  const json_t *mt = json_object_get(root, "model_type");
  if (mt && (!json_is_string(mt) || strcmp(json_string_value(mt), a->hf_model_type)))
    return epee_errf(e, "%s: \"model_type\" is %s%.60s%s; expected \"%s\" (model.arch %s)", where,
                     json_is_string(mt) ? "\"" : "", json_is_string(mt) ? json_string_value(mt) : "not a string",
                     json_is_string(mt) ? "\"" : "", a->hf_model_type, a->name);
  unsigned mapped = 0;
  for (const hf_key *k = a->hf_keys; k->key; k++) {
    const json_t *v = json_object_get(root, k->key);
    if (json_is_null(v)) v = NULL;
    if (k->field < 0) { /* a setting this build implements one way */
      char got[128];
      if (v) value_text(v, got, sizeof got);
      if (v && strcmp(got, k->is))
        return epee_errf(e, "%s: \"%s\" is %.80s; this build's %s implements only %s", where, k->key, got, a->name,
                         k->is);
      continue;
    }
    mapped |= MF_BIT(k->field);
    *from_file |= MF_BIT(k->field); /* given, or HF's default for it: config.json decides either way */
    if (v) {
      if (set_field(c, k->field, v, k->key, where, e)) return -1;
    } else if (k->def_hidden) {
      *(int *)field_slot(c, k->field) = k->def_hidden * c->hidden; /* rows before it have set hidden */
    } else if (isnan(k->def)) {
      return epee_errf(e, "%s: missing \"%s\" (model %s)", where, k->key, model_fields[k->field].name);
    } else if (set_number(c, k->field, k->def, k->key, where, e)) {
      return -1;
    }
  }
  /* what HF has no key for (exit_norm, exit_dropout): from our own "epee" object, written by hf_config_write */
  const json_t *ours = json_object_get(root, "epee");
  for (int f = 0; ours && f < MF_COUNT; f++) {
    const json_t *v = json_object_get(ours, model_fields[f].name);
    if (!(a->fields & MF_BIT(f)) || (mapped & MF_BIT(f)) || f == MF_NUM_LABELS || !v) continue;
    char key[96];
    snprintf(key, sizeof key, "epee.%s", model_fields[f].name);
    if (set_field(c, f, v, key, where, e)) return -1;
    *from_file |= MF_BIT(f);
  }
  if (c->hidden % c->heads)
    return epee_errf(e, "%s: hidden size %d is not a multiple of the %d attention heads", where, c->hidden, c->heads);
  return 0;
}

static json_t *field_json(const model_config *c, int f) {
  const model_field *mf = &model_fields[f];
  const char *p = (const char *)c + mf->offset;
  if (mf->type == MFT_BOOL) return json_boolean(*(const int *)p);
  if (mf->type == MFT_INT) return json_integer(*(const int *)p);
  return json_float(*(const float *)p);
}

json_t *hf_config_write(const model *m) {
  const model_arch *a = m->arch;
  json_t *root = json_object();
  json_object_set_new(root, "architectures", json_pack("[s]", a->hf_class));
  json_object_set_new(root, "model_type", json_string(a->hf_model_type));
  unsigned mapped = 0;
  for (const hf_key *k = a->hf_keys; k->key; k++) {
    if (k->field >= 0) {
      json_object_set_new(root, k->key, field_json(&m->cfg, k->field));
      mapped |= MF_BIT(k->field);
    } else if (!strcmp(k->is, "true") || !strcmp(k->is, "false")) {
      json_object_set_new(root, k->key, json_boolean(!strcmp(k->is, "true")));
    } else { /* "1" stays an integer (HF takes inner_group_num to range()), other text a string */
      char *end;
      long long v = strtoll(k->is, &end, 10);
      json_object_set_new(root, k->key, *end ? json_string(k->is) : json_integer(v));
    }
  }
  json_object_set_new(root, "torch_dtype", json_string("float32"));
  json_t *ours = json_object();
  for (int f = 0; f < MF_COUNT; f++)
    if ((a->fields & MF_BIT(f)) && !(mapped & MF_BIT(f)) && f != MF_NUM_LABELS)
      json_object_set_new(ours, model_fields[f].name, field_json(&m->cfg, f));
  json_object_set_new(root, "epee", ours);
  return root;
}
