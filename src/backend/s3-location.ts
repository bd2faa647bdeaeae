import { ExitCode, ScrateError } from '../errors.js';

// Apart from s3.ts so that opening a local repository does not load the AWS SDK (~0.3 s of CPU).

/** Where an S3 repository is and how to talk to it (see parseS3Location and openBackend). */
export interface S3Settings {
  /** Absent for AWS itself: the SDK picks the regional endpoint. */
  endpoint?: string;
  bucket: string;
  /** Key prefix of every object, '' or ending in '/'. */
  prefix: string;
  region?: string;
  pathStyle: boolean;
  connections: number;
  storageClass?: string;
  /** PEM file with extra CAs, for servers with self-signed certificates. */
  caBundle?: Buffer;
}

/**
 * `s3:https://host[:port]/bucket[/prefix]` (any S3-compatible server) or `s3:bucket[/prefix]`
 * (AWS, region from the options or the SDK's environment).
 */
export function parseS3Location(location: string): Pick<S3Settings, 'endpoint' | 'bucket' | 'prefix'> {
  const rest = location.slice('s3:'.length);
  let endpoint: string | undefined;
  let pathPart = rest;
  const url = /^(https?:\/\/[^/]+)\/?(.*)$/.exec(rest);
  if (url) {
    endpoint = url[1];
    pathPart = url[2]!;
  }
  const [bucket, ...prefixParts] = pathPart.split('/').filter((p) => p !== '');
  if (!bucket) throw new ScrateError(`no bucket in repository location ${location}`, ExitCode.fatal, 'write s3:https://host/bucket/prefix or s3:bucket/prefix');
  const prefix = prefixParts.length ? prefixParts.join('/') + '/' : '';
  return { endpoint, bucket, prefix };
}
