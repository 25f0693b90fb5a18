// Calls a running `costwise serve` with the official `openai` package and
// the Vercel AI SDK (`ai` + `@ai-sdk/openai`), as an application would.
//
// Run by internal/server/sdk_test.go (go test ./internal/server -run SDK),
// which starts a fake OpenAI upstream and the gateway and sets:
//
//   BASE_URL             the gateway's OpenAI base URL, e.g. http://127.0.0.1:8080/v1 (required)
//   API_KEY              a client key the gateway accepts (required)
//   SDK_MODEL            the model or route to ask for (default "costwise/auto")
//   SDK_EXPECT_MODEL     the catalog model the gateway must pick (optional)
//   SDK_EXPECT_TEXT      the answer the upstream gives (optional)
//   SDK_EXPECT_PROMPT_TOKENS, SDK_EXPECT_COMPLETION_TOKENS  usage the upstream reports (optional)
//   SDK_EXPECT_COST_USD  the x-costwise-cost-usd header value (optional)
//   SDK_EXPECT_TOOL_ANSWER  the answer the upstream gives to a tool's result (optional)
//
// The tool tests offer one tool, get_weather(city), ask for Rome's weather
// and expect a call with {"city": "Rome"}; the structured-output tests ask
// for the capital of Italy as {"city": ...} and expect Rome; an upstream
// (or model) that answers otherwise fails them.
//
// Without the optional variables the checks are structural (non-empty
// answer, consistent usage, a positive cost), so the file can also be run
// by hand against a real gateway:
//   BASE_URL=http://127.0.0.1:8080/v1 API_KEY=... node --test tests/sdk/

import assert from "node:assert/strict";
import { test } from "node:test";

import OpenAI from "openai";
import { createOpenAI } from "@ai-sdk/openai";
import { APICallError, generateObject, generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";

function required(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set; run this through go test ./internal/server -run SDK, or set ${name} to point at a running costwise serve`);
  }
  return v;
}

const baseURL = required("BASE_URL");
const apiKey = required("API_KEY");
const model = process.env.SDK_MODEL || "costwise/auto";
const expectModel = process.env.SDK_EXPECT_MODEL || "";
const expectText = process.env.SDK_EXPECT_TEXT || "";
const expectPrompt = process.env.SDK_EXPECT_PROMPT_TOKENS ? Number(process.env.SDK_EXPECT_PROMPT_TOKENS) : undefined;
const expectCompletion = process.env.SDK_EXPECT_COMPLETION_TOKENS ? Number(process.env.SDK_EXPECT_COMPLETION_TOKENS) : undefined;
const expectCost = process.env.SDK_EXPECT_COST_USD ? Number(process.env.SDK_EXPECT_COST_USD) : undefined;
const expectToolAnswer = process.env.SDK_EXPECT_TOOL_ANSWER || "";

const messages = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Write a haiku about autumn." },
];

// Retries off: every request the gateway sees is one the test made.
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20_000 });

function checkText(text) {
  assert.equal(typeof text, "string");
  assert.ok(text.length > 0, "the answer is empty");
  if (expectText) assert.equal(text, expectText);
}

// checkUsage takes OpenAI wire names (prompt_tokens, ...).
function checkUsage(u) {
  assert.ok(u, "no usage in the answer");
  assert.ok(u.prompt_tokens > 0, `prompt_tokens ${u.prompt_tokens}`);
  assert.ok(u.completion_tokens > 0, `completion_tokens ${u.completion_tokens}`);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  if (expectPrompt !== undefined) assert.equal(u.prompt_tokens, expectPrompt);
  if (expectCompletion !== undefined) assert.equal(u.completion_tokens, expectCompletion);
}

// checkHeaders takes a function from header name to value (or null/undefined).
// A live stream's headers leave before its cost is known: the gateway sends
// x-costwise-cost-usd as an HTTP trailer there (fetch does not expose
// trailers), so streamed answers are checked for cost through usage instead.
function checkHeaders(get, { streamed = false } = {}) {
  const picked = get("x-costwise-model");
  assert.ok(picked, "no x-costwise-model header");
  if (expectModel) assert.equal(picked, expectModel);
  if (!streamed) {
    const raw = get("x-costwise-cost-usd");
    assert.ok(raw, "no x-costwise-cost-usd header");
    const cost = Number(raw);
    assert.ok(Number.isFinite(cost) && cost > 0, `x-costwise-cost-usd ${JSON.stringify(raw)} is not a positive number`);
    if (expectCost !== undefined) assert.ok(Math.abs(cost - expectCost) < 1e-12, `x-costwise-cost-usd ${cost}, want ${expectCost}`);
  }
  assert.ok(get("x-costwise-route"), "no x-costwise-route header");
  assert.ok(get("x-costwise-run-id"), "no x-costwise-run-id header");
}

test("openai: plain completion with usage and cost headers", async () => {
  const { data, response } = await client.chat.completions.create({ model, messages }).withResponse();
  assert.equal(response.status, 200);
  checkHeaders((h) => response.headers.get(h));
  assert.equal(data.object, "chat.completion");
  if (expectModel) assert.equal(data.model, expectModel);
  assert.equal(data.choices.length, 1);
  assert.equal(data.choices[0].message.role, "assistant");
  assert.equal(data.choices[0].finish_reason, "stop");
  checkText(data.choices[0].message.content);
  checkUsage(data.usage);
});

test("openai: streaming completion with include_usage", async () => {
  const { data: stream, response } = await client.chat.completions
    .create({ model, messages, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  checkHeaders((h) => response.headers.get(h), { streamed: true });
  let text = "";
  let chunks = 0;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, "chat.completion.chunk");
    if (chunk.usage) {
      assert.equal(usage, null, "usage sent twice");
      assert.equal(chunk.choices.length, 0, "the usage chunk carries no choices");
      usage = chunk.usage;
    }
    for (const c of chunk.choices) {
      text += c.delta?.content ?? "";
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks >= 2, `only ${chunks} chunks`);
  assert.equal(finish, "stop");
  checkText(text);
  checkUsage(usage);
});

test("openai: streaming without include_usage sends no usage", async () => {
  const stream = await client.chat.completions.create({ model, messages, stream: true });
  let text = "";
  for await (const chunk of stream) {
    assert.ok(!chunk.usage, "usage sent without stream_options.include_usage");
    for (const c of chunk.choices) text += c.delta?.content ?? "";
  }
  checkText(text);
});

test("openai: wrong key is an AuthenticationError (401)", async () => {
  const bad = new OpenAI({ baseURL, apiKey: "cw-wrong-key-000000000000000000000", maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model, messages }), (err) => {
    assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 401);
    assert.ok(err.message.length > 0);
    return true;
  });
});

test("openai: unknown model is a BadRequestError (400) naming the model", async () => {
  await assert.rejects(client.chat.completions.create({ model: "no-such-model", messages }), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}: ${err}`);
    assert.equal(err.status, 400);
    assert.equal(err.code, "model_not_found");
    assert.match(err.message, /no-such-model/);
    return true;
  });
});

// The AI SDK's openai(...) shortcut speaks the Responses API; the gateway
// speaks Chat Completions, so the tests use provider.chat(...).
const provider = createOpenAI({ baseURL, apiKey });

test("ai-sdk: generateText", async () => {
  const result = await generateText({
    model: provider.chat(model),
    system: "Be brief.",
    prompt: "Write a haiku about autumn.",
    maxRetries: 0,
  });
  checkText(result.text);
  assert.equal(result.finishReason, "stop");
  checkUsage({
    prompt_tokens: result.usage.inputTokens,
    completion_tokens: result.usage.outputTokens,
    total_tokens: result.usage.totalTokens,
  });
  const headers = result.response.headers ?? {};
  checkHeaders((h) => headers[h]);
  if (expectModel) assert.equal(result.response.modelId, expectModel);
});

test("ai-sdk: streamText", async () => {
  const result = streamText({
    model: provider.chat(model),
    system: "Be brief.",
    prompt: "Write a haiku about autumn.",
    maxRetries: 0,
    onError: () => {}, // errors surface through the awaited promises below
  });
  let text = "";
  let parts = 0;
  for await (const delta of result.textStream) {
    parts++;
    text += delta;
  }
  assert.ok(parts >= 1, "no text parts");
  checkText(text);
  assert.equal(await result.text, text);
  assert.equal(await result.finishReason, "stop");
  const usage = await result.usage;
  checkUsage({
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.totalTokens,
  });
  const response = await result.response;
  const headers = response.headers ?? {};
  checkHeaders((h) => headers[h], { streamed: true });
});

test("ai-sdk: wrong key is an APICallError with status 401", async () => {
  const bad = createOpenAI({ baseURL, apiKey: "cw-wrong-key-000000000000000000000" });
  await assert.rejects(
    generateText({ model: bad.chat(model), prompt: "Hi.", maxRetries: 0 }),
    (err) => {
      assert.ok(APICallError.isInstance(err), `got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.statusCode, 401);
      return true;
    },
  );
});

// Tool calling, as agents use it.
const weatherSchema = {
  type: "object",
  properties: { city: { type: "string" } },
  required: ["city"],
};
const tools = [{ type: "function", function: { name: "get_weather", description: "Weather in a city.", parameters: weatherSchema } }];
const askWeather = [{ role: "user", content: "What is the weather in Rome?" }];

function checkWeatherCall(call) {
  assert.ok(call.id, "the tool call has no id");
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "Rome" });
}

test("openai: tool call, then the tool's result", async () => {
  const first = await client.chat.completions.create({ model, messages: askWeather, tools, tool_choice: "auto" });
  const choice = first.choices[0];
  assert.equal(choice.finish_reason, "tool_calls");
  assert.equal(choice.message.content, null);
  assert.equal(choice.message.tool_calls.length, 1);
  assert.equal(choice.message.tool_calls[0].type, "function");
  checkWeatherCall(choice.message.tool_calls[0]);
  assert.ok(first.usage.prompt_tokens > 0 && first.usage.completion_tokens > 0, "no usage for the tool call");

  const messages = [...askWeather, choice.message, { role: "tool", tool_call_id: choice.message.tool_calls[0].id, content: "21C, sunny" }];
  const second = await client.chat.completions.create({ model, messages, tools });
  assert.equal(second.choices[0].finish_reason, "stop");
  assert.ok(!second.choices[0].message.tool_calls, "a second tool call");
  const text = second.choices[0].message.content;
  assert.ok(text, "no answer to the tool's result");
  if (expectToolAnswer) assert.equal(text, expectToolAnswer);
});

test("openai: streamed tool call", async () => {
  const stream = await client.chat.completions.create({ model, messages: askWeather, tools, stream: true });
  const calls = [];
  let finish = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      for (const d of c.delta?.tool_calls ?? []) {
        const cur = (calls[d.index] ??= { id: "", function: { name: "", arguments: "" } });
        if (d.id) cur.id = d.id;
        cur.function.name += d.function?.name ?? "";
        cur.function.arguments += d.function?.arguments ?? "";
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(finish, "tool_calls");
  assert.equal(calls.length, 1);
  checkWeatherCall(calls[0]);
});

test("ai-sdk: generateText runs a tool and answers with its result", async () => {
  const cities = [];
  const result = await generateText({
    model: provider.chat(model),
    prompt: "What is the weather in Rome?",
    maxRetries: 0,
    tools: {
      get_weather: tool({
        description: "Weather in a city.",
        inputSchema: jsonSchema(weatherSchema),
        execute: async ({ city }) => {
          cities.push(city);
          return "21C, sunny";
        },
      }),
    },
    stopWhen: stepCountIs(2),
  });
  assert.deepEqual(cities, ["Rome"], "the tool ran once, for Rome");
  assert.equal(result.steps.length, 2);
  assert.equal(result.steps[0].finishReason, "tool-calls");
  assert.equal(result.finishReason, "stop");
  assert.ok(result.text, "no final answer");
  if (expectToolAnswer) assert.equal(result.text, expectToolAnswer);
});

// Structured output.
const capitalSchema = {
  type: "object",
  properties: { city: { type: "string" } },
  required: ["city"],
  additionalProperties: false,
};
const askCapital = "What is the capital of Italy? Answer as JSON.";

test("openai: structured output (response_format json_schema)", async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: askCapital }],
    response_format: { type: "json_schema", json_schema: { name: "capital", strict: true, schema: capitalSchema } },
  });
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.deepEqual(JSON.parse(r.choices[0].message.content), { city: "Rome" });
});

test("openai: a schema that does not compile is a BadRequestError", async () => {
  await assert.rejects(
    client.chat.completions.create({
      model,
      messages: [{ role: "user", content: askCapital }],
      response_format: { type: "json_schema", json_schema: { name: "capital", schema: { type: 12 } } },
    }),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.code, "invalid_json_schema");
      return true;
    },
  );
});

test("ai-sdk: generateObject", async () => {
  const { object } = await generateObject({
    model: provider.chat(model),
    schema: jsonSchema(capitalSchema),
    prompt: askCapital,
    maxRetries: 0,
  });
  assert.deepEqual(object, { city: "Rome" });
});

// Pictures. The gateway is asked with a 1x1 PNG, inline; the upstream is
// expected to describe it as SDK_EXPECT_IMAGE_ANSWER when that is set.
const expectImageAnswer = process.env.SDK_EXPECT_IMAGE_ANSWER || "";
const onePixelPNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==";

test("openai: a picture as an image_url part", async () => {
  const r = await client.chat.completions.create({
    model,
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: "Describe the picture." },
          { type: "image_url", image_url: { url: `data:image/png;base64,${onePixelPNG}`, detail: "low" } },
        ],
      },
    ],
  });
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.ok(r.choices[0].message.content);
  if (expectImageAnswer) assert.equal(r.choices[0].message.content, expectImageAnswer);
});

test("ai-sdk: generateText with an image part", async () => {
  const result = await generateText({
    model: provider.chat(model),
    maxRetries: 0,
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: "Describe the picture." },
          { type: "image", image: Buffer.from(onePixelPNG, "base64"), mediaType: "image/png" },
        ],
      },
    ],
  });
  assert.ok(result.text);
  if (expectImageAnswer) assert.equal(result.text, expectImageAnswer);
});
