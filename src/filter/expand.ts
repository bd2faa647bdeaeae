/**
 * Go's os.Expand with restic's mapping, as exclude files are read: $NAME and ${NAME} become the
 * variable's value (empty when unset), $$ a literal '$'; the shell's special one-character
 * names ($1, $?, ...) are variables too, malformed ${ and ${} vanish, a '$' before anything
 * else stays.
 */
export function expandVariables(s: string, env: NodeJS.ProcessEnv): string {
  const value = (name: string) => (name === '$' ? '$' : (env[name] ?? ''));
  let out = '';
  let i = 0;
  for (let j = 0; j < s.length; j++) {
    if (s[j] !== '$' || j + 1 >= s.length) continue;
    out += s.slice(i, j);
    const { name, width } = shellName(s.slice(j + 1));
    if (name !== '') out += value(name);
    else if (width === 0) out += '$';
    j += width;
    i = j + 1;
  }
  return out + s.slice(i);
}

const SPECIAL = '*#$@!?-0123456789';

function shellName(s: string): { name: string; width: number } {
  if (s[0] === '{') {
    if (s.length > 2 && SPECIAL.includes(s[1]!) && s[2] === '}') return { name: s[1]!, width: 3 };
    const close = s.indexOf('}');
    if (close === 1) return { name: '', width: 2 };
    if (close < 0) return { name: '', width: 1 };
    return { name: s.slice(1, close), width: close + 1 };
  }
  if (SPECIAL.includes(s[0]!)) return { name: s[0]!, width: 1 };
  const m = /^[A-Za-z0-9_]*/.exec(s)![0];
  return { name: m, width: m.length };
}
