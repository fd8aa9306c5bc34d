/**
 * Strict parsers of the Prometheus text exposition format 0.0.4 and of OpenMetrics 1.0.0,
 * written from the formats' specifications (prometheus.io "Exposition formats"; OpenMetrics 1.0,
 * prometheus/docs docs/specs/om/open_metrics_spec.md), for tests: each throws on the first line
 * that is not valid, naming the line.
 * @module
 */

/** One parsed sample. */
export interface Sample {
  /** Metric name. */
  name: string;
  /** Labels, unescaped. */
  labels: Record<string, string>;
  /** The value (NaN, ±Infinity allowed). */
  value: number;
}

/** A parsed exposition: families with HELP/TYPE and their samples. */
export interface Exposition {
  /** HELP text by metric name. */
  help: Map<string, string>;
  /** TYPE by metric name. */
  type: Map<string, string>;
  /** Every sample in order. */
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, where: string): number {
  if (text === 'NaN') return NaN;
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) {
    throw new Error(`${where}: bad value ${JSON.stringify(text)}`);
  }
  return Number(text);
}

function unescapeHelp(text: string, where: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const next = text[++i];
    if (next === '\\') out += '\\';
    else if (next === 'n') out += '\n';
    else throw new Error(`${where}: bad escape in HELP`);
  }
  return out;
}

/** Parses one sample line (both formats share its syntax). */
function parseSample(line: string, where: string): Sample {
  let i = 0;
  while (i < line.length && /[a-zA-Z0-9_:]/.test(line[i])) i++;
  const name = line.slice(0, i);
  if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name`);
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    while (line[i] !== '}') {
      const start = i;
      while (i < line.length && /[a-zA-Z0-9_]/.test(line[i])) i++;
      const labelName = line.slice(start, i);
      if (!LABEL_NAME.test(labelName) || labelName.startsWith('__')) {
        throw new Error(`${where}: bad label name ${JSON.stringify(labelName)}`);
      }
      if (line[i++] !== '=' || line[i++] !== '"') {
        throw new Error(`${where}: expected ="`);
      }
      let value = '';
      for (;;) {
        if (i >= line.length) throw new Error(`${where}: unterminated label value`);
        const ch = line[i++];
        if (ch === '"') break;
        if (ch === '\\') {
          const next = line[i++];
          if (next === '\\') value += '\\';
          else if (next === '"') value += '"';
          else if (next === 'n') value += '\n';
          else throw new Error(`${where}: bad escape \\${next} in label value`);
        } else {
          value += ch;
        }
      }
      if (labelName in labels) throw new Error(`${where}: label ${labelName} twice`);
      labels[labelName] = value;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') throw new Error(`${where}: expected , or }`);
    }
    i++;
  }
  if (line[i] !== ' ') throw new Error(`${where}: expected a space before the value`);
  const parts = line.slice(i + 1).split(' ');
  if (parts.length < 1 || parts.length > 2) throw new Error(`${where}: bad value/timestamp`);
  const value = parseValue(parts[0], where);
  if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) {
    throw new Error(`${where}: bad timestamp`);
  }
  return { name, labels, value };
}

/** Parses a whole exposition; throws naming the first invalid line. */
export function parseExposition(text: string): Exposition {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a line feed');
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: Sample[] = [];
  const seenSeries = new Set<string>();
  const closedFamilies = new Set<string>();
  let currentFamily: string | null = null;

  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line)})`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!m) return; // an ordinary comment
      const [, keyword, name, rest = ''] = m;
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name`);
      if (keyword === 'HELP') {
        if (help.has(name)) throw new Error(`${where}: second HELP for ${name}`);
        help.set(name, unescapeHelp(rest, where));
      } else {
        if (type.has(name)) throw new Error(`${where}: second TYPE for ${name}`);
        if (samples.some((s) => s.name === name)) {
          throw new Error(`${where}: TYPE after samples of ${name}`);
        }
        if (!TYPES.has(rest.trim())) throw new Error(`${where}: bad type ${rest}`);
        type.set(name, rest.trim());
      }
      return;
    }

    const { name, labels, value } = parseSample(line, where);

    if (currentFamily !== name) {
      if (closedFamilies.has(name)) throw new Error(`${where}: samples of ${name} not grouped`);
      if (currentFamily) closedFamilies.add(currentFamily);
      currentFamily = name;
    }
    const series = name + JSON.stringify(Object.entries(labels).sort());
    if (seenSeries.has(series)) throw new Error(`${where}: duplicate series`);
    seenSeries.add(series);
    samples.push({ name, labels, value });
  });
  return { help, type, samples };
}

/** A parsed OpenMetrics exposition. */
export interface OpenMetricsExposition {
  /** Metric families by name, in order: type, unit and help as declared. */
  families: Map<string, { type: string; unit?: string; help?: string }>;
  /** Every sample in order, with the family it belongs to. */
  samples: (Sample & { family: string })[];
}

const OM_TYPES = new Set([
  'counter',
  'gauge',
  'histogram',
  'gaugehistogram',
  'stateset',
  'info',
  'summary',
  'unknown',
]);

function unescapeOpenMetrics(text: string, where: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') throw new Error(`${where}: unescaped double quote`);
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const next = text[++i];
    if (next === '\\') out += '\\';
    else if (next === 'n') out += '\n';
    else if (next === '"') out += '"';
    else throw new Error(`${where}: bad escape in HELP`);
  }
  return out;
}

/** The names a family's samples may carry (OpenMetrics 1.0, "Metric types"; the types used here). */
function sampleNamesOf(family: string, type: string): string[] {
  if (type === 'counter') return [`${family}_total`, `${family}_created`];
  if (type === 'info') return [`${family}_info`];
  return [family];
}

/**
 * Parses an OpenMetrics 1.0.0 text exposition strictly: `# EOF` last, metadata (TYPE, UNIT,
 * HELP, once each, before the family's samples) with single spaces, no other comments or blank
 * lines, a unit that is the name's suffix, counter samples named `_total`, families and series
 * not interleaved or repeated. Throws naming the first invalid line.
 */
export function parseOpenMetrics(text: string): OpenMetricsExposition {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.at(-1) !== '# EOF') throw new Error('an OpenMetrics exposition must end with # EOF');
  lines.pop();
  const families: OpenMetricsExposition['families'] = new Map();
  const samples: OpenMetricsExposition['samples'] = [];
  const seenSeries = new Set<string>();
  const seenMetadata = new Set<string>();
  let current: string | null = null;
  let currentHasSamples = false;

  lines.forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line)})`;
    if (line.startsWith('#')) {
      const m = /^# (TYPE|UNIT|HELP) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (!m) throw new Error(`${where}: not TYPE, UNIT or HELP metadata`);
      const [, keyword, name, rest] = m;
      if (name !== current) {
        if (families.has(name)) throw new Error(`${where}: family ${name} interleaved`);
        families.set(name, { type: 'unknown' });
        current = name;
        currentHasSamples = false;
      }
      if (currentHasSamples) throw new Error(`${where}: metadata after samples of ${name}`);
      const family = families.get(name)!;
      if (seenMetadata.has(`${keyword} ${name}`)) {
        throw new Error(`${where}: second ${keyword} for ${name}`);
      }
      seenMetadata.add(`${keyword} ${name}`);
      if (keyword === 'TYPE') {
        if (!OM_TYPES.has(rest)) throw new Error(`${where}: bad type ${rest}`);
        if (rest === 'counter' && name.endsWith('_total')) {
          throw new Error(`${where}: a counter family is named without _total`);
        }
        family.type = rest;
      } else if (keyword === 'UNIT') {
        if (!/^[a-zA-Z0-9_:]*$/.test(rest)) throw new Error(`${where}: bad unit`);
        if (rest && !name.endsWith(`_${rest}`)) {
          throw new Error(`${where}: the unit must be the suffix of the family name`);
        }
        family.unit = rest;
      } else {
        family.help = unescapeOpenMetrics(rest, where);
      }
      return;
    }
    if (line === '') throw new Error(`${where}: blank line`);
    const sample = parseSample(line, where);
    let family = current;
    const allowed = family ? sampleNamesOf(family, families.get(family)!.type) : [];
    if (!family || !allowed.includes(sample.name)) {
      // A sample without metadata starts an unknown-type family of its own name.
      if (families.has(sample.name)) {
        throw new Error(`${where}: ${sample.name} is not a sample of family ${current}`);
      }
      families.set(sample.name, { type: 'unknown' });
      family = current = sample.name;
    }
    currentHasSamples = true;
    const series = sample.name + JSON.stringify(Object.entries(sample.labels).sort());
    if (seenSeries.has(series)) throw new Error(`${where}: duplicate series`);
    seenSeries.add(series);
    samples.push({ ...sample, family });
  });
  return { families, samples };
}
