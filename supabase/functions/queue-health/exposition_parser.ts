/**
 * A strict parser of the Prometheus text exposition format 0.0.4, written from the format's
 * specification, for tests: it throws on the first line that is not valid, naming the line.
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
