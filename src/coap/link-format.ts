// CoRE Link Format (RFC 6690) listing of the device resources, with titles and
// resource types for people and tools. Each release that is not revoked adds its download.
import { FORMAT_CBOR, FORMAT_JSON, FORMAT_OCTET_STREAM, PATH_CHECK, PATH_DOWNLOAD, PATH_REPORT } from '../protocol/constants.ts';
import type { ReleaseRecord } from '../storage/store.ts';

export function linkFormat(releases: readonly ReleaseRecord[]): string {
  const links = [
    `</${PATH_CHECK}>;rt="ota.check";title="Check for an update";ct="${FORMAT_CBOR} ${FORMAT_JSON}"`,
    `</${PATH_REPORT}>;rt="ota.report";title="Report an update outcome";ct=${FORMAT_CBOR}`,
  ];
  for (const release of releases) {
    if (release.revoked) continue;
    links.push(
      `</${PATH_DOWNLOAD}/${release.downloadId}>;rt="ota.image";title="Image ${release.version} (${release.channel})";ct=${FORMAT_OCTET_STREAM};sz=${release.size}`,
    );
  }
  return links.join(',');
}
