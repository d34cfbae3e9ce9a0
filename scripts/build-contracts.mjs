#!/usr/bin/env node
// Compiles contracts/src/*.sol with the npm `solc` pinned in package.json (standard-JSON API,
// imports resolved from node_modules) and writes one artifact per contract to contracts/build/.
//
//   node scripts/build-contracts.mjs           write contracts/build/<Name>.json
//   node scripts/build-contracts.mjs --check   compile in memory; exit 1 naming every artifact
//                                              that is missing, stale or orphaned (CI runs this)
//
// Artifacts are byte-for-byte reproducible: fixed compiler and settings, metadata hash left out of
// the bytecode (bytecodeHash "none"), stable key order, two-space indent, trailing newline.

import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC_DIR = path.join(ROOT, 'contracts', 'src');
const BUILD_DIR = path.join(ROOT, 'contracts', 'build');
const NODE_MODULES = path.join(ROOT, 'node_modules');

// Everything that changes the bytecode lives here; it is copied into every artifact.
const SETTINGS = Object.freeze({
  evmVersion: 'cancun',
  metadata: { bytecodeHash: 'none' },
  optimizer: { enabled: true, runs: 200 },
  remappings: [],
  viaIR: false,
});

const OUTPUT_SELECTION = { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } };

function rel(p) {
  return path.relative(ROOT, p).split(path.sep).join('/');
}

function fail(message) {
  process.stderr.write(`build-contracts: ${message}\n`);
  process.exit(1);
}

function loadSolc() {
  const require = createRequire(path.join(ROOT, 'package.json'));
  let solc;
  try {
    solc = require('solc');
  } catch (err) {
    fail(`cannot load the npm package "solc" (${err.message}); run \`npm ci\` at the repository root`);
  }
  const pinned = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).devDependencies?.solc;
  const version = solc.version();
  if (pinned && !version.startsWith(`${pinned}+`)) {
    fail(`installed solc is ${version} but package.json pins ${pinned}; run \`npm ci\``);
  }
  return solc;
}

// Source unit names are repository-relative ("contracts/src/X.sol", "@openzeppelin/contracts/..."),
// so the compiler input does not depend on where the checkout lives.
function readSources() {
  if (!fs.existsSync(SRC_DIR)) fail(`no source directory ${rel(SRC_DIR)}`);
  const files = fs
    .readdirSync(SRC_DIR)
    .filter((f) => f.endsWith('.sol'))
    .sort();
  if (files.length === 0) fail(`no .sol files in ${rel(SRC_DIR)}`);
  const sources = {};
  for (const file of files) {
    sources[`contracts/src/${file}`] = { content: fs.readFileSync(path.join(SRC_DIR, file), 'utf8') };
  }
  return sources;
}

function findImport(unitName) {
  const resolved = path.resolve(NODE_MODULES, unitName);
  if (!resolved.startsWith(NODE_MODULES + path.sep)) {
    return { error: `import "${unitName}" resolves outside node_modules` };
  }
  try {
    return { contents: fs.readFileSync(resolved, 'utf8') };
  } catch {
    return { error: `import "${unitName}" not found at ${rel(resolved)} (is node_modules installed?)` };
  }
}

// Recursively sorts object keys so the JSON text is independent of insertion order.
function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical(value[k])]),
    );
  }
  return value;
}

function compile(solc) {
  const sources = readSources();
  const input = {
    language: 'Solidity',
    sources,
    settings: { ...SETTINGS, outputSelection: OUTPUT_SELECTION },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const diagnostics = output.errors ?? [];
  const errors = diagnostics.filter((d) => d.severity === 'error');
  for (const d of diagnostics.filter((x) => x.severity !== 'error')) {
    process.stderr.write(d.formattedMessage ?? `${d.severity}: ${d.message}\n`);
  }
  if (errors.length > 0) {
    for (const d of errors) process.stderr.write(d.formattedMessage ?? `${d.type}: ${d.message}\n`);
    fail(`solc ${solc.version()} reported ${errors.length} error(s)`);
  }

  // One artifact per source file: the contract named like the file (MintplaneERC721.sol -> MintplaneERC721).
  const artifacts = new Map();
  for (const sourceName of Object.keys(sources)) {
    const contractName = path.posix.basename(sourceName, '.sol');
    const contract = output.contracts?.[sourceName]?.[contractName];
    if (!contract) fail(`${sourceName} does not define a contract named ${contractName}`);
    const bytecode = contract.evm.bytecode.object;
    if (!bytecode) fail(`${sourceName}:${contractName} has no bytecode (abstract contract or interface?)`);
    const artifact = {
      contractName,
      sourceName,
      abi: canonical(contract.abi),
      bytecode: `0x${bytecode}`,
      deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
      compiler: solc.version(),
      settings: canonical(SETTINGS),
    };
    artifacts.set(`${contractName}.json`, `${JSON.stringify(artifact, null, 2)}\n`);
  }
  return artifacts;
}

function existingArtifacts() {
  if (!fs.existsSync(BUILD_DIR)) return [];
  return fs.readdirSync(BUILD_DIR).filter((f) => f.endsWith('.json'));
}

function check(artifacts) {
  const problems = [];
  for (const [file, text] of artifacts) {
    const target = path.join(BUILD_DIR, file);
    if (!fs.existsSync(target)) problems.push(`${rel(target)} is missing`);
    else if (fs.readFileSync(target, 'utf8') !== text) problems.push(`${rel(target)} is stale (differs from a fresh build)`);
  }
  for (const file of existingArtifacts()) {
    if (!artifacts.has(file)) problems.push(`${rel(path.join(BUILD_DIR, file))} has no source in ${rel(SRC_DIR)}`);
  }
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`build-contracts --check: ${p}\n`);
    process.stderr.write('build-contracts --check: run `node scripts/build-contracts.mjs` and commit contracts/build/\n');
    process.exit(1);
  }
  process.stdout.write(`build-contracts --check: ${artifacts.size} artifact(s) up to date\n`);
}

function write(artifacts) {
  fs.mkdirSync(BUILD_DIR, { recursive: true });
  for (const file of existingArtifacts()) {
    if (!artifacts.has(file)) {
      fs.rmSync(path.join(BUILD_DIR, file));
      process.stdout.write(`removed ${rel(path.join(BUILD_DIR, file))}\n`);
    }
  }
  for (const [file, text] of artifacts) {
    const target = path.join(BUILD_DIR, file);
    fs.writeFileSync(target, text);
    process.stdout.write(`wrote ${rel(target)} (${Buffer.byteLength(text)} bytes)\n`);
  }
}

function main(argv) {
  const args = argv.slice(2);
  const unknown = args.filter((a) => a !== '--check');
  if (unknown.length > 0) fail(`unknown argument(s): ${unknown.join(' ')} (usage: build-contracts.mjs [--check])`);
  const artifacts = compile(loadSolc());
  if (args.includes('--check')) check(artifacts);
  else write(artifacts);
}

main(process.argv);
