'use strict';
// CommonJS face of ./feeds.mjs, the one implementation that Node and browsers share (require of an
// ES module: Node 20.19+ / 22.12+).
module.exports = require('./feeds.mjs');
