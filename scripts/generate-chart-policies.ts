/** Writes the chart's `mode: policies` template from the objects `mesh-admission policies` prints. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHART_POLICIES_TEMPLATE, chartPoliciesTemplate } from '../src/cel/chart-template.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
writeFileSync(path.join(repo, CHART_POLICIES_TEMPLATE), chartPoliciesTemplate());
console.log(`wrote ${CHART_POLICIES_TEMPLATE}`);
