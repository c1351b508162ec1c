/* The backbone registry: one row per architecture. A new backbone is its file in models/ plus a row here. */
#include <stdio.h>
#include <string.h>

#include "models/backbones.h"

#define ENCODER (MF_BIT(MF_HIDDEN) | MF_BIT(MF_LAYERS) | MF_BIT(MF_HEADS) | MF_BIT(MF_INTERMEDIATE) |   \
                 MF_BIT(MF_NUM_LABELS) | MF_BIT(MF_HIDDEN_DROPOUT) | MF_BIT(MF_ATTENTION_DROPOUT) | \
                 MF_BIT(MF_EXIT_DROPOUT) | MF_BIT(MF_LAYER_NORM_EPS) | MF_BIT(MF_INIT_STD))
#define COMMON (ENCODER | MF_BIT(MF_VOCAB) | MF_BIT(MF_MAX_POSITION)) /* text backbones */

static const model_arch archs[] = {
    {"bert", "BERT: post-LN encoder, pooled [CLS] exits", COMMON | MF_BIT(MF_TYPE_VOCAB), MODEL_INPUT_TEXT,
     (const char *const[]){"wordpiece", "sentencepiece", NULL}, "bert.", bert_create, model_init_default},
    {"albert", "ALBERT: factorised embeddings, one layer shared per group, pooled [CLS] exits",
     COMMON | MF_BIT(MF_TYPE_VOCAB) | MF_BIT(MF_EMBEDDING_SIZE) | MF_BIT(MF_HIDDEN_GROUPS), MODEL_INPUT_TEXT,
     (const char *const[]){"sentencepiece", "wordpiece", NULL}, "albert.", albert_create, model_init_default},
    {"gpt2", "GPT-2: causal pre-LN decoder, exits on the last real token", COMMON | MF_BIT(MF_EXIT_NORM), MODEL_INPUT_TEXT,
     (const char *const[]){"bpe", NULL}, "transformer.", gpt2_create, gpt2_init},
    {"vit", "ViT: patch embeddings, pre-LN encoder, exits on [CLS]",
     ENCODER | MF_BIT(MF_EXIT_NORM) | MF_BIT(MF_IMAGE_SIZE) | MF_BIT(MF_PATCH_SIZE) | MF_BIT(MF_CHANNELS),
     MODEL_INPUT_IMAGE, NULL, "vit.", vit_create, model_init_default},
};
#define N_ARCHS (sizeof archs / sizeof archs[0])

const char *const model_arch_names[] = {"bert", "albert", "gpt2", "vit", NULL};

const model_arch *model_find_arch(const char *name) {
  for (size_t i = 0; name && i < N_ARCHS; i++)
    if (strcmp(archs[i].name, name) == 0) return &archs[i];
  return NULL;
}

int model_arch_takes_tokenizer(const model_arch *a, const char *kind, char *list, size_t len) {
  list[0] = '\0';
  for (int i = 0; a->tokenizers && a->tokenizers[i]; i++)
    if (kind && strcmp(a->tokenizers[i], kind) == 0) return 1;
  if (!a->tokenizers) snprintf(list, len, "none (it reads images)");
  for (int i = 0; a->tokenizers && a->tokenizers[i]; i++)
    snprintf(list + strlen(list), len - strlen(list), "%s%s", i ? ", " : "", a->tokenizers[i]);
  return 0;
}
