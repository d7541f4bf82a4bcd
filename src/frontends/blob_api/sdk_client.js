// Drives the box's Blob API with the unmodified @azure/storage-blob SDK, for blob_api_test.
// Environment: BLOB_ENDPOINT (http://127.0.0.1:<port>/<account>), BLOB_ACCOUNT, BLOB_KEY
// (base64), OUT_DIR (where downloaded bytes are written for the test to compare).
// Prints one JSON object with the results of each step; exits 1 on an unexpected error.
"use strict";

const fs = require("fs");
const path = require("path");
const {
  BlobServiceClient,
  BlobClient,
  ContainerClient,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
  generateAccountSASQueryParameters,
  BlobSASPermissions,
  ContainerSASPermissions,
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
} = require("@azure/storage-blob");

// Same bytes as test/support/pattern.h Pattern(n, seed).
function pattern(n, seed) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed + Math.floor(i / 251)) & 255;
  return b;
}

function blockId(i) {
  return Buffer.from("block-" + String(i).padStart(6, "0")).toString("base64");
}

async function main() {
  const endpoint = process.env.BLOB_ENDPOINT;
  const account = process.env.BLOB_ACCOUNT;
  const out = process.env.OUT_DIR;
  const cred = new StorageSharedKeyCredential(account, process.env.BLOB_KEY);
  const retry = { retryOptions: { maxTries: 1 } };
  const svc = new BlobServiceClient(endpoint, cred, retry);
  const result = {};

  const container = svc.getContainerClient("sdk");
  await container.create();
  result.containerExists = await container.exists();

  // Stage three blocks and commit them in another order.
  const parts = [pattern(1 << 20, 1), pattern(700000, 2), pattern(12345, 3)];
  const staged = container.getBlockBlobClient("staged/three.bin");
  for (let i = 0; i < parts.length; i++) {
    await staged.stageBlock(blockId(i), parts[i], parts[i].length);
  }
  const uncommitted = await staged.getBlockList("uncommitted");
  result.uncommittedBlocks = uncommitted.uncommittedBlocks.length;
  await staged.commitBlockList([blockId(2), blockId(0), blockId(1)]);
  const committed = await staged.getBlockList("all");
  result.committedBlocks = committed.committedBlocks.map((b) => b.size);
  result.uncommittedAfterCommit = (committed.uncommittedBlocks || []).length;
  fs.writeFileSync(path.join(out, "staged.bin"), await staged.downloadToBuffer());

  // uploadData with small blocks: Put Block x N + Put Block List.
  const big = pattern(3 * 1024 * 1024 + 4321, 7);
  const upload = container.getBlockBlobClient("dir/a/upload.bin");
  await upload.uploadData(big, { blockSize: 1024 * 1024, maxSingleShotSize: 1024 * 1024, concurrency: 2 });
  result.uploadBlocks = (await upload.getBlockList("committed")).committedBlocks.length;
  await container.getBlockBlobClient("dir/b/x.txt").upload("hello", 5);
  await container.getBlockBlobClient("top.txt").upload("top", 3);

  // Listings.
  const flat = [];
  for await (const b of container.listBlobsFlat({ prefix: "dir/" })) flat.push(b.name);
  result.flat = flat;
  const tree = [];
  for await (const item of container.listBlobsByHierarchy("/", { prefix: "dir/" })) {
    tree.push(item.kind === "prefix" ? "P:" + item.name : "B:" + item.name);
  }
  result.tree = tree;
  const paged = [];
  for await (const page of container.listBlobsFlat().byPage({ maxPageSize: 2 })) {
    paged.push(page.segment.blobItems.map((b) => b.name).join(","));
  }
  result.paged = paged;
  const containers = [];
  for await (const c of svc.listContainers()) containers.push(c.name);
  result.containers = containers;

  // Ranged and whole downloads.
  const range = await upload.download(1000000, 1500000);
  const chunks = [];
  for await (const c of range.readableStreamBody) chunks.push(c);
  fs.writeFileSync(path.join(out, "range.bin"), Buffer.concat(chunks));
  result.contentRange = range.contentRange;
  fs.writeFileSync(path.join(out, "whole.bin"), await upload.downloadToBuffer());

  // Metadata and properties.
  await upload.setMetadata({ color: "blue", count: "3" });
  const props = await upload.getProperties();
  result.metadata = props.metadata;
  result.contentLength = props.contentLength;
  await upload.setHTTPHeaders({ blobContentType: "application/x-test" });
  result.contentType = (await upload.getProperties()).contentType;

  // A read-only blob SAS, used by an anonymous client.
  const now = Date.now();
  const sas = generateBlobSASQueryParameters(
    {
      containerName: "sdk",
      blobName: "dir/a/upload.bin",
      permissions: BlobSASPermissions.parse("r"),
      startsOn: new Date(now - 5 * 60 * 1000),
      expiresOn: new Date(now + 60 * 60 * 1000),
    },
    cred,
  ).toString();
  const sasBlob = new BlobClient(`${endpoint}/sdk/dir/a/upload.bin?${sas}`, undefined, retry);
  fs.writeFileSync(path.join(out, "sas.bin"), await sasBlob.downloadToBuffer());
  try {
    await sasBlob.getBlockBlobClient().upload("nope", 4);
    result.sasWrite = "allowed";
  } catch (e) {
    result.sasWrite = `${e.statusCode} ${e.code}`;
  }

  // A container SAS that may list, and an account SAS.
  const csas = generateBlobSASQueryParameters(
    { containerName: "sdk", permissions: ContainerSASPermissions.parse("rl"), expiresOn: new Date(now + 3600e3) },
    cred,
  ).toString();
  const sasContainer = new ContainerClient(`${endpoint}/sdk?${csas}`, undefined, retry);
  const viaSas = [];
  for await (const b of sasContainer.listBlobsFlat({ prefix: "top" })) viaSas.push(b.name);
  result.containerSasList = viaSas;
  const asas = generateAccountSASQueryParameters(
    {
      permissions: AccountSASPermissions.parse("rl"),
      services: AccountSASServices.parse("b").toString(),
      resourceTypes: AccountSASResourceTypes.parse("sco").toString(),
      expiresOn: new Date(now + 3600e3),
    },
    cred,
  ).toString();
  const sasSvc = new BlobServiceClient(`${endpoint}?${asas}`, undefined, retry);
  const viaAccountSas = [];
  for await (const c of sasSvc.listContainers()) viaAccountSas.push(c.name);
  result.accountSasContainers = viaAccountSas;

  // Copy within the box.
  const copy = container.getBlockBlobClient("copy/of-upload.bin");
  const poller = await copy.beginCopyFromURL(upload.url);
  const copied = await poller.pollUntilDone();
  result.copyStatus = copied.copyStatus;
  fs.writeFileSync(path.join(out, "copy.bin"), await copy.downloadToBuffer());

  // Errors come back as Azure error codes.
  try {
    await container.getBlobClient("missing.bin").download();
  } catch (e) {
    result.missing = `${e.statusCode} ${e.code}`;
  }
  try {
    await container.create();
  } catch (e) {
    result.createAgain = `${e.statusCode} ${e.code}`;
  }
  await container.getBlobClient("top.txt").delete();
  result.topExists = await container.getBlobClient("top.txt").exists();

  console.log(JSON.stringify(result));
}

main().catch((e) => {
  console.log(JSON.stringify({ error: String(e && e.stack ? e.stack : e), code: e && e.code }));
  process.exit(1);
});
