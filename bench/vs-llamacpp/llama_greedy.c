/* llama_greedy: greedy token ids from llama.cpp for given prompt ids, never stopping early, so
   they can be compared with `flashrt run --print-ids --ignore-eos` id for id.
   Built by interop.sh against the llama.cpp build of build_llamacpp.sh.
   usage: llama_greedy MODEL.gguf N ID,ID,... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

static void quiet(enum ggml_log_level level, const char* text, void* user) {
  (void)level, (void)text, (void)user;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s MODEL.gguf N ID,ID,...\n", argv[0]);
    return 2;
  }
  const int n_new = atoi(argv[2]);
  llama_token ids[4096];
  int n = 0;
  for (char* p = strtok(argv[3], ","); p && n < 4096; p = strtok(NULL, ",")) ids[n++] = atoi(p);
  llama_log_set(quiet, NULL);
  llama_backend_init();
  struct llama_model_params mp = llama_model_default_params();
  struct llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) return 1;
  const struct llama_vocab* vocab = llama_model_get_vocab(model);
  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 1024;
  cp.n_batch = 1024;
  cp.n_threads = cp.n_threads_batch = 2;
  struct llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) return 1;
  const int V = llama_vocab_n_tokens(vocab);
  if (llama_decode(ctx, llama_batch_get_one(ids, n))) return 1;
  for (int i = 0; i < n_new; ++i) {
    const float* l = llama_get_logits_ith(ctx, -1);
    llama_token best = 0;
    for (int v = 1; v < V; ++v)
      if (l[v] > l[best]) best = v;
    printf(i ? " %d" : "%d", best);
    if (llama_decode(ctx, llama_batch_get_one(&best, 1))) return 1;
  }
  printf("\n");
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
