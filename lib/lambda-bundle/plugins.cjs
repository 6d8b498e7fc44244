// esbuild plugins of the Lambda bundles (serverless.yml, `custom.esbuild.plugins`; bench/bundle.ts
// loads the same file). CommonJS because serverless-esbuild `require`s it.
const { readFile } = require("node:fs/promises");
const { dirname, extname } = require("node:path");

const LOADERS = { ".ts": "ts", ".mts": "ts", ".json": "json" };

/**
 * The sync's S3 client (lib/sync/s3-client.ts, loaded by `import()` on an `s3` source only) and
 * everything it imports, as a copy of their own inside its chunk. Without this, code splitting
 * assigns whole files to chunks: the SDK's barrel modules (`@aws-sdk/core/protocols`,
 * `@smithy/core/serde`, ...) that the eager code imports too carry S3's REST-XML protocol and
 * serializers into the chunk every cold start parses (about 35 KB). The copy is a second
 * instance of the SDK's shared modules, as a client bundled on its own would have; the S3 client
 * shares no state with the others.
 */
const isolateS3Client = {
  name: "isolate-s3-client",
  setup(build) {
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData?.resolving) return undefined;
      const entering = args.kind === "dynamic-import" && /\/s3-client$/.test(args.path);
      if (!entering && !args.pluginData?.isolated) return undefined;
      const resolved = await build.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: { resolving: true },
      });
      if (resolved.errors.length > 0) return { errors: resolved.errors };
      if (resolved.external || resolved.namespace !== "file") return resolved;
      return {
        path: resolved.path,
        suffix: `${resolved.suffix}?s3-client`,
        sideEffects: resolved.sideEffects,
        pluginData: { isolated: true },
      };
    });
    build.onLoad({ filter: /.*/ }, async (args) => {
      if (!args.pluginData?.isolated) return undefined;
      return {
        contents: await readFile(args.path),
        loader: LOADERS[extname(args.path)] ?? "js",
        resolveDir: dirname(args.path),
        pluginData: { isolated: true },
      };
    });
  },
};

module.exports = [isolateS3Client];
