"""Talks to a running `tiller serve` with the official openai client, as users do, and prints
what it got as one JSON object (ServeOpenAIClientTests compares it with `tiller generate`).

usage: openai_client_check.py BASE_URL API_KEY STEERING_NAME
"""
import json
import sys

import openai

base_url, api_key, steer = sys.argv[1:4]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
question = [{"role": "user", "content": "what is pottery?"}]
out = {"models": [m.id for m in client.models.list()]}

reply = client.chat.completions.create(model="any", messages=question, max_tokens=10, seed=5)
out["chat"] = reply.choices[0].message.content
out["chat_finish_reason"] = reply.choices[0].finish_reason
out["chat_completion_tokens"] = reply.usage.completion_tokens

stream = client.chat.completions.create(model="any", messages=question, max_tokens=10, seed=5, stream=True,
                                        stream_options={"include_usage": True})
text, usage = "", None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        text += chunk.choices[0].delta.content
    if chunk.usage:
        usage = chunk.usage.completion_tokens
out["chat_stream"], out["chat_stream_completion_tokens"] = text, usage

steered = client.chat.completions.create(model="any", messages=question, max_tokens=10, seed=5,
                                         extra_body={"steering": [{"name": steer, "alpha": 10}]})
out["chat_steered"] = steered.choices[0].message.content

stream = client.chat.completions.create(model="any", messages=question, max_tokens=10, seed=5, stream=True,
                                        extra_body={"steering": [{"name": steer, "alpha": 10}]})
out["chat_steered_stream"] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

completion = client.completions.create(model="any", prompt="what is clay?", max_tokens=10, temperature=0.8, seed=9)
out["completion"] = completion.choices[0].text
stream = client.completions.create(model="any", prompt="what is clay?", max_tokens=10, temperature=0.8, seed=9, stream=True)
out["completion_stream"] = "".join(c.choices[0].text for c in stream if c.choices)

try:
    client.chat.completions.create(model="any", messages=question, max_tokens=2, extra_body={"steering": [{"name": "nope"}]})
    out["unknown_steering"] = "accepted"
except openai.BadRequestError as error:
    out["unknown_steering"] = error.body.get("param") if isinstance(error.body, dict) else str(error.body)

try:
    openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0).models.list()
    out["wrong_key"] = "accepted"
except openai.AuthenticationError as error:
    out["wrong_key"] = error.status_code

print(json.dumps(out))
