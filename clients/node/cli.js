#!/usr/bin/env node
// posesvc-node: estimate poses on one image, or stream it as N video frames, and print the answers as JSON.
//   node cli.js estimate --target 127.0.0.1:50051 --image photo.jpg [--boxes '[[x,y,w,h]]'] [--model NAME]
//   node cli.js stream   --target 127.0.0.1:50051 --image photo.jpg --frames 3 [--boxes '[[x,y,w,h]]'] [--detect-every 100]
//   node cli.js models   --target 127.0.0.1:50051
'use strict';

const fs = require('fs');
const { PoseClient } = require('./client');

function parse(argv) {
  const args = { command: argv[0] };
  for (let i = 1; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
  return args;
}

async function main() {
  const a = parse(process.argv.slice(2));
  if (!a.command || !a.target) throw new Error('usage: cli.js estimate|stream|models --target HOST:PORT [--image F]');
  const client = new PoseClient(a.target, { apiKey: a['api-key'] || process.env.POSESVC_API_KEY || null });
  try {
    let out;
    if (a.command === 'models') {
      out = await client.listModels();
    } else {
      const image = fs.readFileSync(a.image);
      const boxes = a.boxes ? JSON.parse(a.boxes) : null;
      if (a.command === 'estimate') {
        out = await client.estimate(image, { boxes, model: a.model || '' });
      } else if (a.command === 'stream') {
        const n = Number(a.frames || 3);
        const frames = Array.from({ length: n }, (_, i) => ({ frame_id: i, image, boxes: i === 0 ? boxes : null, timestamp: i / 10 }));
        out = await client.stream(frames, { detect_every: Number(a['detect-every'] || 1), model: a.model || '' });
      } else {
        throw new Error(`unknown command ${a.command}`);
      }
    }
    process.stdout.write(JSON.stringify(out, (k, v) => (v && v.type === 'Buffer' ? undefined : v)) + '\n');
  } finally {
    client.close();
  }
}

main().catch((err) => {
  process.stderr.write(`posesvc-node: error: ${err.message}\n`);
  process.exit(2);
});
