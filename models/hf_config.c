/* HF config.json <-> model_config, driven by each registry row's hf_keys: one table serves import and export. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static void json_text(const cJSON *v, char *out, size_t n) {
  if (cJSON_IsString(v)) snprintf(out, n, "%s", v->valuestring);
  else if (cJSON_IsBool(v)) snprintf(out, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
  else if (cJSON_IsNumber(v)) snprintf(out, n, "%g", v->valuedouble);
  else snprintf(out, n, "(%s)", cJSON_IsArray(v) ? "an array" : "an object");
}

/* One value into field f: a number (whole for int fields) or a bool for a bool field, inside the field's range. */
static int set_field(model_config *c, int f, const cJSON *v, const char *key, const char *where, epee_err *e) {
  const model_field *mf = &model_fields[f];
  double x;
  if (mf->type == MFT_BOOL && cJSON_IsBool(v)) x = cJSON_IsTrue(v);
  else if (mf->type != MFT_BOOL && cJSON_IsNumber(v)) x = v->valuedouble;
  else
    return epee_errf(e, "%s: \"%s\": expected %s", where, key, mf->type == MFT_BOOL ? "true or false" : "a number");
  if (!(x >= mf->lo && x <= mf->hi) || (mf->type == MFT_INT && x != floor(x)))
    return epee_errf(e, "%s: \"%s\" is %g; expected %s in [%g, %g] (model %s)", where, key, x,
                     mf->type == MFT_INT ? "a whole number" : "a value", mf->lo, mf->hi, mf->name);
  if (mf->type == MFT_FLOAT) *(float *)field_slot(c, f) = (float)x;
  else *(int *)field_slot(c, f) = (int)x;
  return 0;
}

int hf_config_read(const model_arch *a, const cJSON *root, const char *where, model_config *c, unsigned *from_file,
                   epee_err *e) {
  *from_file = 0;
  if (!cJSON_IsObject(root)) return epee_errf(e, "%s: expected a JSON object", where);
  for (const cJSON *a = root->child; a; a = a->next) /* cJSON keeps both; which one HF would take is unclear */
    for (const cJSON *b = a->next; b; b = b->next)
      if (!strcmp(a->string, b->string)) return epee_errf(e, "%s: duplicate key \"%.60s\"", where, a->string);
  const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
  if (mt && (!cJSON_IsString(mt) || strcmp(mt->valuestring, a->hf_model_type)))
    return epee_errf(e, "%s: \"model_type\" is %s%.60s%s; expected \"%s\" (model.arch %s)", where,
                     cJSON_IsString(mt) ? "\"" : "", cJSON_IsString(mt) ? mt->valuestring : "not a string",
                     cJSON_IsString(mt) ? "\"" : "", a->hf_model_type, a->name);
  unsigned mapped = 0;
  for (const hf_key *k = a->hf_keys; k->key; k++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, k->key);
    if (v && cJSON_IsNull(v)) v = NULL;
    if (k->field < 0) { /* a setting this build implements one way */
      char got[128];
      if (v) json_text(v, got, sizeof got);
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
    } else {
      cJSON tmp = {.type = cJSON_Number, .valuedouble = k->def};
      if (set_field(c, k->field, &tmp, k->key, where, e)) return -1;
    }
  }
  /* what HF has no key for (exit_norm, exit_dropout): from our own "epee" object, written by hf_config_write */
  const cJSON *ours = cJSON_GetObjectItemCaseSensitive(root, "epee");
  for (int f = 0; ours && f < MF_COUNT; f++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ours, model_fields[f].name);
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

cJSON *hf_json_float(float x) {
  char buf[32];
  for (int digits = 6; digits <= 9; digits++) {
    snprintf(buf, sizeof buf, "%.*g", digits, (double)x);
    if ((float)strtod(buf, NULL) == x) break;
  }
  return cJSON_CreateNumber(strtod(buf, NULL));
}

static cJSON *field_json(const model_config *c, int f) {
  const model_field *mf = &model_fields[f];
  const char *p = (const char *)c + mf->offset;
  if (mf->type == MFT_BOOL) return cJSON_CreateBool(*(const int *)p);
  if (mf->type == MFT_INT) return cJSON_CreateNumber(*(const int *)p);
  return hf_json_float(*(const float *)p);
}

cJSON *hf_config_write(const model *m) {
  const model_arch *a = m->arch;
  cJSON *root = cJSON_CreateObject(), *arch = cJSON_AddArrayToObject(root, "architectures");
  cJSON_AddItemToArray(arch, cJSON_CreateString(a->hf_class));
  cJSON_AddStringToObject(root, "model_type", a->hf_model_type);
  unsigned mapped = 0;
  for (const hf_key *k = a->hf_keys; k->key; k++) {
    if (k->field >= 0) {
      cJSON_AddItemToObject(root, k->key, field_json(&m->cfg, k->field));
      mapped |= MF_BIT(k->field);
    } else if (!strcmp(k->is, "true") || !strcmp(k->is, "false")) {
      cJSON_AddBoolToObject(root, k->key, !strcmp(k->is, "true"));
    } else {
      char *end;
      double v = strtod(k->is, &end);
      cJSON_AddItemToObject(root, k->key, *end ? cJSON_CreateString(k->is) : cJSON_CreateNumber(v));
    }
  }
  cJSON_AddStringToObject(root, "torch_dtype", "float32");
  cJSON *ours = cJSON_AddObjectToObject(root, "epee");
  for (int f = 0; f < MF_COUNT; f++)
    if ((a->fields & MF_BIT(f)) && !(mapped & MF_BIT(f)) && f != MF_NUM_LABELS)
      cJSON_AddItemToObject(ours, model_fields[f].name, field_json(&m->cfg, f));
  return root;
}
