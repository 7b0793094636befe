// Tool calling and structured output through the official openai npm client, the way an agent
// framework drives a server: a required call, a named call streamed, the tool's result sent back
// for a final answer, and a JSON-schema response. Prints what it got as one JSON object
// (tests/server/server_tools_test.cpp checks it).
// usage: node tools_client.mjs BASE_URL SPEC_JSON   (SPEC_JSON: {"model", "tools", "schema"})
import OpenAI from 'openai';

const [baseURL, specJson] = process.argv.slice(2);
const spec = JSON.parse(specJson);
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 120000 });
const out = {};
const user = { role: 'user', content: 'What is the weather in Paris?' };
const base = { model: spec.model, tools: spec.tools, temperature: 0, max_tokens: 300 };

// 1. tool_choice "required", not streamed.
const req = await client.chat.completions.create({ ...base, messages: [user], tool_choice: 'required' });
out.required = req.choices[0].message;
out.required_finish = req.choices[0].finish_reason;

// 2. A named function, streamed: the calls are assembled from delta.tool_calls as clients do.
const stream = await client.chat.completions.create({
  ...base,
  messages: [user],
  tool_choice: { type: 'function', function: { name: spec.tools[0].function.name } },
  stream: true,
});
const calls = [];
out.named_content = '';
for await (const chunk of stream) {
  const choice = chunk.choices?.[0];
  if (!choice) continue;
  out.named_content += choice.delta?.content ?? '';
  for (const d of choice.delta?.tool_calls ?? []) {
    calls[d.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } };
    const c = calls[d.index];
    if (d.id) c.id = d.id;
    if (d.function?.name) c.function.name += d.function.name;
    if (d.function?.arguments) c.function.arguments += d.function.arguments;
  }
  if (choice.finish_reason) out.named_finish = choice.finish_reason;
}
out.named_calls = calls;

// 3. The tool's result goes back; the model answers (tools still offered, its choice).
const call = out.required.tool_calls[0];
const followup = await client.chat.completions.create({
  ...base,
  max_tokens: 16,
  messages: [
    user,
    { role: 'assistant', content: null, tool_calls: [call] },
    { role: 'tool', tool_call_id: call.id, content: '{"temperature": 18, "sky": "clear"}' },
  ],
});
out.final = followup.choices[0].message;
out.final_finish = followup.choices[0].finish_reason;

// 4. Structured output: a JSON schema response.
const structured = await client.chat.completions.create({
  model: spec.model,
  temperature: 0,
  max_tokens: 400,
  messages: [{ role: 'user', content: 'Describe a city as JSON.' }],
  response_format: { type: 'json_schema', json_schema: { name: 'city', schema: spec.schema, strict: true } },
});
out.structured = structured.choices[0].message.content;
out.structured_finish = structured.choices[0].finish_reason;

// 5. A bad schema is the client's typed 400.
try {
  await client.chat.completions.create({
    model: spec.model,
    messages: [user],
    response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', not: {} } } },
  });
  out.bad_status = 0;
} catch (e) {
  out.bad_status = e.status;
  out.bad_message = e.message;
}

console.log(JSON.stringify(out));
