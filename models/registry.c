/* The backbone registry: one row per architecture. A new backbone is its file in models/ plus a row here. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/backbones.h"

#define ENCODER (MF_BIT(MF_HIDDEN) | MF_BIT(MF_LAYERS) | MF_BIT(MF_HEADS) | MF_BIT(MF_INTERMEDIATE) |   \
                 MF_BIT(MF_NUM_LABELS) | MF_BIT(MF_HIDDEN_DROPOUT) | MF_BIT(MF_ATTENTION_DROPOUT) | \
                 MF_BIT(MF_EXIT_DROPOUT) | MF_BIT(MF_LAYER_NORM_EPS) | MF_BIT(MF_INIT_STD))
#define COMMON (ENCODER | MF_BIT(MF_VOCAB) | MF_BIT(MF_MAX_POSITION)) /* text backbones */

/* config.json keys (HF's BertConfig, AlbertConfig, GPT2Config, ViTConfig). Shapes are required; the rest default
 * as HF's config classes do. */
#define REQ NAN
#define SHARED_ENCODER_KEYS                                                                                   \
  {"hidden_size", MF_HIDDEN, REQ, 0, NULL}, {"num_hidden_layers", MF_LAYERS, REQ, 0, NULL},                  \
      {"num_attention_heads", MF_HEADS, REQ, 0, NULL}, {"intermediate_size", MF_INTERMEDIATE, REQ, 0, NULL},  \
      {"layer_norm_eps", MF_LAYER_NORM_EPS, 1e-12, 0, NULL}, {"initializer_range", MF_INIT_STD, 0.02, 0, NULL}
#define TEXT_ENCODER_KEYS                                                                                     \
  {"vocab_size", MF_VOCAB, REQ, 0, NULL}, {"max_position_embeddings", MF_MAX_POSITION, REQ, 0, NULL},          \
      {"type_vocab_size", MF_TYPE_VOCAB, 2, 0, NULL}, {"position_embedding_type", -1, 0, 0, "absolute"}
static const hf_key bert_keys[] = {
    TEXT_ENCODER_KEYS, SHARED_ENCODER_KEYS,
    {"hidden_dropout_prob", MF_HIDDEN_DROPOUT, 0.1, 0, NULL},
    {"attention_probs_dropout_prob", MF_ATTENTION_DROPOUT, 0.1, 0, NULL},
    {"hidden_act", -1, 0, 0, "gelu"},
    {NULL, 0, 0, 0, NULL}};
static const hf_key albert_keys[] = {
    TEXT_ENCODER_KEYS, SHARED_ENCODER_KEYS,
    {"embedding_size", MF_EMBEDDING_SIZE, REQ, 0, NULL},
    {"num_hidden_groups", MF_HIDDEN_GROUPS, 1, 0, NULL},
    {"hidden_dropout_prob", MF_HIDDEN_DROPOUT, 0, 0, NULL},
    {"attention_probs_dropout_prob", MF_ATTENTION_DROPOUT, 0, 0, NULL},
    {"hidden_act", -1, 0, 0, "gelu_new"},
    {"inner_group_num", -1, 0, 0, "1"},
    {NULL, 0, 0, 0, NULL}};
static const hf_key gpt2_keys[] = {
    {"vocab_size", MF_VOCAB, REQ, 0, NULL},
    {"n_embd", MF_HIDDEN, REQ, 0, NULL},
    {"n_layer", MF_LAYERS, REQ, 0, NULL},
    {"n_head", MF_HEADS, REQ, 0, NULL},
    {"n_inner", MF_INTERMEDIATE, 0, 4, NULL},
    {"n_positions", MF_MAX_POSITION, REQ, 0, NULL},
    {"layer_norm_epsilon", MF_LAYER_NORM_EPS, 1e-5, 0, NULL},
    {"resid_pdrop", MF_HIDDEN_DROPOUT, 0.1, 0, NULL},
    {"attn_pdrop", MF_ATTENTION_DROPOUT, 0.1, 0, NULL},
    {"initializer_range", MF_INIT_STD, 0.02, 0, NULL},
    {"activation_function", -1, 0, 0, "gelu_new"},
    {"scale_attn_weights", -1, 0, 0, "true"},
    {"scale_attn_by_inverse_layer_idx", -1, 0, 0, "false"},
    {"reorder_and_upcast_attn", -1, 0, 0, "false"},
    {"add_cross_attention", -1, 0, 0, "false"},
    {NULL, 0, 0, 0, NULL}};
static const hf_key vit_keys[] = {
    SHARED_ENCODER_KEYS,
    {"image_size", MF_IMAGE_SIZE, REQ, 0, NULL},
    {"patch_size", MF_PATCH_SIZE, REQ, 0, NULL},
    {"num_channels", MF_CHANNELS, 3, 0, NULL},
    {"hidden_dropout_prob", MF_HIDDEN_DROPOUT, 0, 0, NULL},
    {"attention_probs_dropout_prob", MF_ATTENTION_DROPOUT, 0, 0, NULL},
    {"hidden_act", -1, 0, 0, "gelu"},
    {"qkv_bias", -1, 0, 0, "true"},
    {NULL, 0, 0, 0, NULL}};

static const model_arch archs[] = {
    {"bert", "BERT: post-LN encoder, pooled [CLS] exits", COMMON | MF_BIT(MF_TYPE_VOCAB), MODEL_INPUT_TEXT,
     (const char *const[]){"wordpiece", "sentencepiece", NULL}, "bert.", "bert", "BertModel", bert_keys, bert_create,
     model_init_default},
    {"albert", "ALBERT: factorised embeddings, one layer shared per group, pooled [CLS] exits",
     COMMON | MF_BIT(MF_TYPE_VOCAB) | MF_BIT(MF_EMBEDDING_SIZE) | MF_BIT(MF_HIDDEN_GROUPS), MODEL_INPUT_TEXT,
     (const char *const[]){"sentencepiece", "wordpiece", NULL}, "albert.", "albert", "AlbertModel", albert_keys,
     albert_create, model_init_default},
    {"gpt2", "GPT-2: causal pre-LN decoder, exits on the last real token", COMMON | MF_BIT(MF_EXIT_NORM), MODEL_INPUT_TEXT,
     (const char *const[]){"bpe", NULL}, "transformer.", "gpt2", "GPT2Model", gpt2_keys, gpt2_create,
     gpt2_init},
    {"vit", "ViT: patch embeddings, pre-LN encoder, exits on [CLS]",
     ENCODER | MF_BIT(MF_EXIT_NORM) | MF_BIT(MF_IMAGE_SIZE) | MF_BIT(MF_PATCH_SIZE) | MF_BIT(MF_CHANNELS),
     MODEL_INPUT_IMAGE, NULL, "vit.", "vit", "ViTModel", vit_keys, vit_create,
     model_init_default},
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
