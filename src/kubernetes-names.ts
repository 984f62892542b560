/**
 * Kubernetes' own naming rules, so that nothing this project proposes or writes is rejected
 * by the API server after admission.
 */

/** Kubernetes' limit for a DNS-1123 label (RFC 1123 host name part). */
export const DNS1123_LABEL_MAX_LENGTH = 63;

/** Also written into the admission policies' CEL, whose `matches` takes the same syntax. */
export const DNS1123_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

const DNS1123_LABEL = new RegExp(DNS1123_LABEL_PATTERN);

/**
 * Kubernetes' IsDNS1123Label: lower-case letters, digits and '-', starting and ending with a
 * letter or digit, at most 63 characters.
 */
export function isDns1123Label(value: string): boolean {
  return value.length <= DNS1123_LABEL_MAX_LENGTH && DNS1123_LABEL.test(value);
}

/**
 * Kubernetes' IsDNS1123Subdomain, as object names are checked: at most 253 characters, dot-separated
 * parts of lower-case letters, digits and '-', each starting and ending with a letter or digit.
 */
export function isDns1123Subdomain(value: string): boolean {
  return value.length <= 253 && value.split('.').every((label) => DNS1123_LABEL.test(label));
}

/**
 * Whether Kubernetes accepts `name` as a Service port name. Kubernetes checks a non-empty
 * Service port name as a DNS-1123 label; that a name is required when the Service has several
 * ports, and that names are unique, are properties of the whole port list, not of one name.
 */
export function isValidServicePortName(name: string): boolean {
  return isDns1123Label(name);
}
