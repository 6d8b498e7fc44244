/**
 * The S3 client, which only an `s3` source needs: the sync loads this module with `import()` on
 * such a run, so the Lambda bundle keeps it in a chunk of its own (code splitting) that a run
 * from a URL or inline source never parses (npm run bench: about 150 KB).
 */
export { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
