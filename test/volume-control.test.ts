import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { test } from 'node:test';
import { controlAddress, listenControl, requestCommit } from '../src/volume/control.js';

test('volume commit reaches the serve only with the key: a wrong token is refused, another key finds no serve', async () => {
  const key = randomBytes(32);
  const asked: string[][] = [];
  const server = await listenControl(key, async (tags) => {
    asked.push(tags);
    return 'a'.repeat(64);
  });
  try {
    assert.equal(await requestCommit(key, ['t1']), 'a'.repeat(64));
    assert.deepEqual(asked, [['t1']]);
    assert.equal(await requestCommit(randomBytes(32), ['t2']), undefined);
    const socket = connect(controlAddress(key).path);
    socket.setEncoding('utf8');
    socket.write(JSON.stringify({ token: 'f'.repeat(64), op: 'commit', tags: [] }) + '\n');
    let reply = '';
    for await (const chunk of socket) reply += chunk as string;
    assert.deepEqual(JSON.parse(reply), { ok: false, error: 'bad request' });
    assert.deepEqual(asked, [['t1']], 'no commit for a wrong token');
    await assert.rejects(listenControl(key, async () => ''), /already served/);
  } finally {
    server.close();
  }
});
