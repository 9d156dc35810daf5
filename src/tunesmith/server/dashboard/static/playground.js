"use strict";
// Playground: POST /v1/chat/completions with stream: true, read as server-sent events, for one
// model or for two side by side with the same conversation.

const conversations = {a: [], b: []};

async function stream(side, model, messages, maxTokens) {
  const box = document.getElementById(`answer-${side}`);
  const reply = el("div", {class: "reply", "data-model": model});
  box.append(el("p", {class: "hint"}, `${model}:`), reply);
  const response = await fetch("/v1/chat/completions", {
    method: "POST", credentials: "same-origin",
    headers: {"content-type": "application/json", "x-csrf-token": CSRF()},
    body: JSON.stringify({model, messages, max_tokens: maxTokens, stream: true}),
  });
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    throw new Error(data.error ? data.error.message : `${response.status}`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", text = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += value;
    const blocks = buffer.split(/\r?\n\r?\n/);
    buffer = blocks.pop();
    for (const block of blocks) {
      const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
      if (!data || data === "[DONE]") continue;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      text += (chunk.choices[0].delta || {}).content || "";
      reply.textContent = text;
    }
  }
  reply.dataset.done = "true";
  return text;
}

document.getElementById("chat").onsubmit = async (event) => {
  event.preventDefault();
  const prompt = document.getElementById("prompt").value;
  const maxTokens = Number(document.getElementById("max-tokens").value) || 64;
  const sides = [["a", document.getElementById("model-a").value.trim()], ["b", document.getElementById("model-b").value.trim()]]
    .filter(([, model]) => model);
  document.getElementById("send").disabled = true;
  try {
    await Promise.all(sides.map(async ([side, model]) => {
      const box = document.getElementById(`answer-${side}`);
      box.append(el("p", {class: "user"}, `you: ${prompt}`));
      conversations[side].push({role: "user", content: prompt});
      const answer = await stream(side, model, conversations[side], maxTokens);
      conversations[side].push({role: "assistant", content: answer});
    }));
    showError(null);
  } catch (err) { showError(err); }
  document.getElementById("send").disabled = false;
};

document.getElementById("reset").onclick = () => {
  conversations.a = []; conversations.b = [];
  fill("answer-a"); fill("answer-b");
};

(async () => {
  try {
    const models = await api("GET", "/v1/models");
    fill("models", models.data.map((m) => el("option", {value: m.id})));
    const wanted = new URLSearchParams(window.location.search).get("model");
    document.getElementById("model-a").value = wanted || (models.data[0] ? models.data[0].id : "");
  } catch (err) { showError(err); }
})();
