// CoRE Link Format (RFC 6690) listing of the device resources, with titles and
// resource types for people and tools. Each release that is not revoked adds its download.
import { FORMAT_CBOR, FORMAT_JSON, FORMAT_OCTET_STREAM, PATH_CHECK, PATH_DOWNLOAD, PATH_REPORT } from '../protocol/constants.ts';
import type { ReleaseRecord } from '../storage/store.ts';

/** A link attribute: its name, its value without quotes, and whether the value is written quoted. */
type LinkAttribute = [name: string, value: string, quoted: boolean];

interface Link {
  href: string;
  attributes: LinkAttribute[];
}

/** A query filter of RFC 6690 section 4.1: one attribute (or href) and a value, "*" at its end for a prefix. */
export interface LinkFilter {
  name: string;
  value: string;
}

export function linkFormat(releases: readonly ReleaseRecord[], filter?: LinkFilter): string {
  const links: Link[] = [
    {
      href: `/${PATH_CHECK}`,
      attributes: [
        ['rt', 'ota.check', true],
        ['title', 'Check for an update', true],
        ['ct', `${FORMAT_CBOR} ${FORMAT_JSON}`, true],
      ],
    },
    {
      href: `/${PATH_REPORT}`,
      attributes: [
        ['rt', 'ota.report', true],
        ['title', 'Report an update outcome', true],
        ['ct', String(FORMAT_CBOR), false],
      ],
    },
  ];
  const listed = new Set<string>();
  for (const release of releases) {
    // Releases that share a payload share one resource, listed once under the first
    // (highest, as the store sorts them) version that is not revoked.
    if (release.revoked || listed.has(release.downloadId)) continue;
    listed.add(release.downloadId);
    links.push({
      href: `/${PATH_DOWNLOAD}/${release.downloadId}`,
      attributes: [
        ['rt', 'ota.image', true],
        ['title', `Image ${release.version} (${release.channel})`, true],
        ['ct', String(FORMAT_OCTET_STREAM), false],
        ['sz', String(release.size), false],
      ],
    });
  }
  return links
    .filter((link) => filter === undefined || matches(link, filter))
    .map(render)
    .join(',');
}

function render(link: Link): string {
  const attributes = link.attributes.map(([name, value, quoted]) => (quoted ? `;${name}="${value}"` : `;${name}=${value}`));
  return `<${link.href}>${attributes.join('')}`;
}

/**
 * Applies a filter as RFC 6690 section 4.1 describes: "href" compares the link target,
 * any other name compares the attribute of that name. A value that is a space-separated
 * list (rt, ct) matches when one of its entries does.
 */
function matches(link: Link, filter: LinkFilter): boolean {
  const candidates = filter.name === 'href' ? [link.href] : link.attributes.filter(([name]) => name === filter.name).flatMap(([, value]) => value.split(' '));
  if (filter.value.endsWith('*')) {
    const prefix = filter.value.slice(0, -1);
    return candidates.some((candidate) => candidate.startsWith(prefix));
  }
  return candidates.includes(filter.value);
}
