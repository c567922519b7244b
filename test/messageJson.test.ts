// The JSON text a producer builds for its messages must be exactly what JSON.stringify makes of the same values:
// publishers write it instead of serializing, and a consumer, a Watermill reader or a dedup check sees the text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { jsonString, metadataJson, payloadJson } from '../src/system/messageJson.ts';
import { incrementMessage } from '../src/system/counterPublish.ts';
import { insertMessagesStatement } from '../src/system/sql/mariadb/messagesTable.ts';
import type { OutgoingMessage } from '../src/system/pubsub/types.ts';

const TRICKY = ["it's", 'back\\slash', '"quoted"', 'line\nbreak\ttab\r\u0000nul\u001a\u007f', 'é ü 漢字 😀', '\ud800 lone surrogate', '\u2028', ' ', '', randomUUID()];
const EVERY_ASCII = Array.from({ length: 128 }, (_, c) => `a${String.fromCharCode(c)}b`);

test('jsonString is JSON.stringify for every ASCII character and for strings that need escapes', () => {
  for (const s of [...TRICKY, ...EVERY_ASCII]) assert.equal(jsonString(s), JSON.stringify(s), JSON.stringify(s));
});

test("an increment's prebuilt JSON is what JSON.stringify makes of its payload and metadata", () => {
  for (const counterUuid of [randomUUID(), ...TRICKY]) {
    for (const requestId of [randomUUID(), ...TRICKY]) {
      const m = incrementMessage({ counterUuid, requestId }, false);
      assert.equal(m.json?.payload, JSON.stringify(m.payload));
      assert.equal(m.json?.metadata, JSON.stringify(m.metadata));
      assert.equal(payloadJson(m), JSON.stringify(m.payload));
      assert.equal(metadataJson(m), JSON.stringify(m.metadata));
    }
  }
});

test("the INSERT's text and values are the same with the prebuilt JSON and without it", () => {
  const built = TRICKY.map((t) => incrementMessage({ counterUuid: randomUUID(), requestId: t }, true));
  const plain: OutgoingMessage[] = built.map(({ uuid, payload, metadata }) => ({ uuid, payload, metadata }));
  assert.deepEqual(insertMessagesStatement('`t`', built), insertMessagesStatement('`t`', plain));
});
