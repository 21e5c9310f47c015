// posesvc gRPC client for Node.js: ListModels, Estimate and StreamEstimate over @grpc/grpc-js, with the
// service definition read at run time from proto/posesvc/v1/pose.proto of this repository.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto');

function loadService() {
  const def = protoLoader.loadSync(path.join(PROTO_ROOT, 'posesvc', 'v1', 'pose.proto'), {
    includeDirs: [PROTO_ROOT],
    keepCase: true, // field names as in the proto (use_boxes, track_id, ...)
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(def).posesvc.v1.PoseService;
}

// Boxes [[x, y, w, h(, score)], ...] in image pixels → proto Box messages.
function toBoxes(boxes) {
  return (boxes || []).map((b) => (b.length > 4 ? { x: b[0], y: b[1], w: b[2], h: b[3], score: b[4] } : { x: b[0], y: b[1], w: b[2], h: b[3] }));
}

class PoseClient {
  // target: 'host:port'; apiKey: sent as 'authorization: Bearer <key>' when given; timeoutMs: per call deadline.
  constructor(target, { apiKey = null, timeoutMs = 60000 } = {}) {
    const Service = loadService();
    this.stub = new Service(target, grpc.credentials.createInsecure());
    this.timeoutMs = timeoutMs;
    this.metadata = new grpc.Metadata();
    if (apiKey) this.metadata.set('authorization', `Bearer ${apiKey}`);
  }

  _deadline() {
    return new Date(Date.now() + this.timeoutMs);
  }

  listModels() {
    return new Promise((resolve, reject) => {
      this.stub.ListModels({}, this.metadata, { deadline: this._deadline() }, (err, res) => (err ? reject(err) : resolve(res.models)));
    });
  }

  // image: Buffer (JPEG/PNG/WebP bytes); boxes: null = the server's detector, [] = no persons.
  estimate(image, { boxes = null, flip = null, model = '' } = {}) {
    const req = { image, boxes: toBoxes(boxes), use_boxes: boxes !== null, model, options: flip === null ? {} : { flip } };
    return new Promise((resolve, reject) => {
      this.stub.Estimate(req, this.metadata, { deadline: this._deadline() }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  // frames: [{frame_id, image (Buffer), boxes?, timestamp?}]; resolves to the FramePoses answers, in order.
  stream(frames, options = {}) {
    return new Promise((resolve, reject) => {
      const answers = [];
      const call = this.stub.StreamEstimate(this.metadata, { deadline: this._deadline() });
      call.on('data', (a) => answers.push(a));
      call.on('error', reject);
      call.on('end', () => resolve(answers));
      frames.forEach((f, i) => {
        const msg = { frame_id: f.frame_id, image: f.image, boxes: toBoxes(f.boxes), use_boxes: Boolean(f.boxes) };
        if (f.timestamp !== undefined) msg.timestamp = f.timestamp;
        if (i === 0) msg.options = options;
        call.write(msg);
      });
      call.end();
    });
  }

  close() {
    this.stub.close();
  }
}

module.exports = { PoseClient, loadService };
