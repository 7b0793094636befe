// Drives a running `flashrt serve` with the official openai npm client and prints what it got as
// one JSON object (tests/server/server_openai_js_test.cpp compares it with `flashrt run`).
// usage: node openai_client.mjs BASE_URL SPEC_JSON
//   SPEC_JSON: {"model", "prompt", "messages", "max_tokens", "batch": [completion args, ...]}
import OpenAI from 'openai';

const [baseURL, specJson] = process.argv.slice(2);
const spec = JSON.parse(specJson);
const client = new OpenAI({ baseURL, apiKey: spec.apiKey ?? 'unused', maxRetries: 0, timeout: 60000 });
const out = {};

const models = await client.models.list();
out.models = models.data.map((m) => m.id);

const chatArgs = { model: spec.model, messages: spec.messages, max_tokens: spec.max_tokens, temperature: 0 };
const chat = await client.chat.completions.create(chatArgs);
out.chat = chat.choices[0].message.content;
out.chat_finish = chat.choices[0].finish_reason;
out.chat_usage = chat.usage;

const chatStream = await client.chat.completions.create({
  ...chatArgs,
  stream: true,
  stream_options: { include_usage: true },
});
out.chat_stream = '';
for await (const chunk of chatStream) {
  if (chunk.usage) out.chat_stream_usage = chunk.usage;
  const choice = chunk.choices?.[0];
  if (!choice) continue;
  out.chat_stream += choice.delta?.content ?? '';
  if (choice.finish_reason) out.chat_stream_finish = choice.finish_reason;
}

const compArgs = { model: spec.model, prompt: spec.prompt, max_tokens: spec.max_tokens, temperature: 0 };
const comp = await client.completions.create(compArgs);
out.completion = comp.choices[0].text;
out.completion_finish = comp.choices[0].finish_reason;
const compStream = await client.completions.create({ ...compArgs, stream: true });
out.completion_stream = '';
for await (const chunk of compStream) out.completion_stream += chunk.choices?.[0]?.text ?? '';

// Several streams at once share the server's batched forward steps: each must read exactly as the
// same request run alone (greedy and seeded), so the concurrent ones go first, then one by one.
async function streamText(args) {
  const stream = await client.completions.create({ ...args, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices?.[0]?.text ?? '';
  return text;
}
const batchArgs = (spec.batch ?? []).map((b) => ({ model: spec.model, ...b }));
out.batch_concurrent = await Promise.all(batchArgs.map(streamText));
out.batch_solo = [];
for (const a of batchArgs) out.batch_solo.push(await streamText(a));

// n choices: one prompt, forked; choice i samples with seed + i.
const nArgs = { ...compArgs, temperature: 1.0, max_tokens: 8 };
const nRes = await client.completions.create({ ...nArgs, n: 3, seed: 11 });
out.n_texts = [...nRes.choices].sort((a, b) => a.index - b.index).map((c) => c.text);
out.n_usage = nRes.usage;
out.n_solo = [];
for (let i = 0; i < 3; ++i)
  out.n_solo.push((await client.completions.create({ ...nArgs, seed: 11 + i })).choices[0].text);

// Log-probabilities in chat's shape.
const lp = await client.chat.completions.create({ ...chatArgs, max_tokens: 6, logprobs: true, top_logprobs: 3 });
out.chat_logprobs = lp.choices[0].logprobs;
out.chat_logprobs_text = lp.choices[0].message.content;

// Errors come back as the client's typed APIError with OpenAI's fields.
try {
  await client.chat.completions.create({ ...chatArgs, n: 1000 });
  out.error_status = 0;
} catch (e) {
  out.error_status = e.status;
  out.error_code = e.code;
  out.error_param = e.param;
  out.error_type = e.type;
}

console.log(JSON.stringify(out));
