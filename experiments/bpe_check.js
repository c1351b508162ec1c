// Helper of experiments/bpe_check.sh: the texts to compare on, npm gpt-3-encoder's own ids for them, the comparison,
// and the committed fixture of tests/test_bpe.c.
//   node bpe_check.js texts CACHE OUT        OUT: the texts, each NUL-terminated (hostile list, then every GO text:
//                                            go/{train,dev,test}.tsv text, go_rel both columns); OUT.labels: names
//   node bpe_check.js encode JSDIR IN        one JSON id list per text of IN, by JSDIR/Encoder.js
//   node bpe_check.js compare IN OURS THEIRS "N/N identical", the first difference; exit 1 on any
//   node bpe_check.js fixture CACHE JSDIR OUT the hostile list and ~300 GO dev texts with Encoder.js's ids
// IN is read as Encoder.js users read a file, fs.readFileSync(IN, 'utf8'): invalid UTF-8 becomes U+FFFD by the
// WHATWG rule, which data/bpe.c reproduces. A text never holds NUL, so NUL separates them.
'use strict';
const fs = require('fs');

const B = (...bytes) => Buffer.from(bytes);
const S = s => Buffer.from(s, 'utf8');
const cat = (...parts) => Buffer.concat(parts.map(p => (typeof p === 'string' ? S(p) : p)));

// [label, bytes]. Unicode 15-17 letters (CJK ext. H/I/J, Egyptian hieroglyphs ext. A) check that the letter
// tables are node's (Python 3.11's unicodedata 14 does not know them).
function hostile() {
  const h = [
    ['BOM at the start of the file', '\ufeffhello'],
    ['empty', ''],
    ['emoji', 'I \u2764\ufe0f this 😀😃😄 and 🎉!'],
    ['skin tones', '👍🏽 👋🏿👋🏻'],
    ['ZWJ family', 'family: 👨‍👩‍👧‍👦 and 👩‍❤️‍💋‍👨'],
    ['flags', '🏳️‍🌈 🇫🇷🇩🇪 🏴󠁧󠁢󠁳󠁣󠁴󠁿'],
    ['CJK', '中文字符测试，包括标点。'],
    ['Japanese', '日本語のテキスト、カタカナとひらがな'],
    ['Korean', '한국어 텍스트 입니다'],
    ['combining marks', 'e\u0301 a\u0308\u0323 Z̴̡̪͙a̶l̷g̸o̵'],
    ['Devanagari', 'नमस्ते दुनिया'],
    ['Thai', 'สวัสดีครับ'],
    ['Arabic', 'مرحبا بالعالم ١٢٣'],
    ['Hebrew', 'שָׁלוֹם עולם'],
    ['controls', '\x01\x02\x1b[31mred\x1b[0m a\x7fb \x1c\x1d\x1e\x1f x\x1fy'],
    ['format chars', 'a\u200bb c\u200dd e\u2060f \u00ad-\u0085-'],
    ['line and paragraph separators', 'a\u2028b\u2029 c \u2028 d'],
    ['U+FEFF inside', 'a\ufeffb \ufeff c'],
    ['whitespace runs', 'a  b   c\t\td \t e\n\nf \n g\r\nh\u000bi\u000cj'],
    ['leading and trailing', '   leading and trailing   '],
    ['trailing newline', 'x\n'],
    ['NBSP', 'a\u00a0b a\u00a0\u00a0b a \u00a0b \u00a0'],
    ['ideographic space', 'a\u3000b \u3000 c\u3000\u3000'],
    ['other Zs', 'a\u2003b\u2009c\u202fd\u205fe\u1680f\u180eg'],
    ['only spaces', '     '],
    ['only newlines', '\n\n\n'],
    ['mixed scripts', 'Hello мир 世界 مرحبا γειά σου Ωmega'],
    ['accents', 'naïve café résumé Straße İstanbul ΟΔΟΣ οδός'],
    ['contractions', "don't I'll we're they've I'm he'd it's she's"],
    ['contractions in caps', "DON'T I'LL WE'RE THEY'VE I'M HE'D IT'S"],
    ['quotes', "'s ''s  's 'S 'tis y'all rock'n'roll ’s ‘quoted’ \"dq\""],
    ['digits', '1234567890 3.14159 1,000,000 0x1F 12abc34 x2 2x  123'],
    ['other numbers', '٣٤٥ ①②③ Ⅻ ½ x² ߁߂'],
    ['punctuation', '!!!??? ... -- — “quoted” (a)[b]{c} a,b ;: @#$%^&*_+=|\\/<>~`'],
    ['comma pairs', '",""  },"  ],"  ),"  "],"  ],[  \',"  .",""  \',\'  ,"  .,"'],
    ['special token text', '<|endoftext|> and <|endoftext|>'],
    ['long word', 'Pneumonoultramicroscopicsilicovolcanoconiosis'],
    ['url and email', 'https://example.com/path?q=1&r=2#frag user.name+tag@example.co.uk'],
    ['code', 'def f(x):\n    return x**2  # square\n\tif (a != b) { c++; }'],
    ['private use and noncharacters', '\ue000\uf8ff \ufffe\uffff \u{10ffff} \u{f0000}'],
    ['U+FFFD itself', 'a\ufffdb'],
    ['Unicode 15-17 letters and digits', 'a\u{31350}b \u{2ebf0}x y\u{13460}z \u{323b0}q c\u0c5cd 1\u{10d40}2 \u{1e5f0}7'],
    ['astral letters and digits', '𝐀𝐁𝐂 𝟏𝟐𝟑 𐐀𐐁'],
    ['ascii art', '¯\\_(ツ)_/¯ ( ͡° ͜ʖ ͡°)'],
  ].map(([l, s]) => [l, S(s)]);
  h.push(
    ['invalid: lone bytes', B(0xff, 0x20, 0xfe, 0x61, 0x80, 0xbf, 0xc0, 0xc1, 0xf5, 0xf8, 0xfc)],
    ['invalid: overlong', B(0xc0, 0xaf, 0x20, 0xe0, 0x80, 0xaf, 0x20, 0xf0, 0x80, 0x80, 0xaf)],
    ['invalid: truncated', cat(B(0xe4, 0xb8), 'a', B(0xf0, 0x9f, 0x98), 'x ', B(0xe2, 0x82), ' ', B(0xc3))],
    ['invalid: surrogates', cat('a', B(0xed, 0xa0, 0x80), 'b', B(0xed, 0xbf, 0xbf), B(0xed, 0x9f, 0xbf))],
    ['invalid: above U+10FFFF', B(0xf4, 0x90, 0x80, 0x80, 0x20, 0xf4, 0x8f, 0xbf, 0xbf)],
    ['invalid: latin-1', cat('caf', B(0xe9), ' na', B(0xef), 've')],
    ['invalid: at the end', cat('end', B(0xe2, 0x82))],
    ['invalid: continuation run', B(0x80, 0x80, 0x80, 0x61, 0xe1, 0x80, 0x80, 0x80)],
  );
  for (const [name, ch] of [['a', 'a'], ['space', ' '], ['1', '1'], ['.', '.'], ['中', '中'], ['😀', '😀'],
                            ['newline', '\n'], ['é', 'é']])
    h.push([`10000 x ${name}`, S(ch.repeat(10000))]);
  h.push(['5000 x ab', S('ab'.repeat(5000))], ["5000 x 's", S("'s".repeat(5000))],
         ['10000 x invalid 0xff', Buffer.alloc(10000, 0xff)]);
  // random bytes biased towards UTF-8's boundary cases: the decoder's corner cases and broken text
  const pool = [0x00, 0x20, 0x27, 0x61, 0x31, 0x2e, 0x0a, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2,
                0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff];
  let seed = 12345;
  const rnd = n => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  for (let k = 0; k < 300; k++) {
    const b = Buffer.alloc(1 + rnd(12));
    for (let i = 0; i < b.length; i++) b[i] = pool[rnd(pool.length)] || 0x62; // no NUL: it separates texts
    h.push([`random bytes ${k}`, b]);
  }
  return h;
}

function tsv(file) { // [[label, text]] of every column but the label, by readFileSync as the fetch wrote them
  const lines = fs.readFileSync(file, 'utf8').split('\n').slice(1).filter(l => l.length);
  const out = [];
  lines.forEach((l, i) => l.split('\t').slice(0, -1).forEach((c, j) => out.push([`${file}:${i + 2}:${j + 1}`, c])));
  return out;
}

const goTexts = cache => ['go/train', 'go/dev', 'go/test', 'go_rel/train', 'go_rel/dev', 'go_rel/test']
  .flatMap(f => tsv(`${cache}/${f}.tsv`));

function readTexts(file) {
  const t = fs.readFileSync(file, 'utf8').split('\0');
  t.pop();
  return t;
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'texts') {
  const [cache, out] = args;
  const all = hostile().concat(goTexts(cache).map(([l, s]) => [l, S(s)]));
  fs.writeFileSync(out, Buffer.concat(all.flatMap(([, b]) => [b, B(0)])));
  fs.writeFileSync(out + '.labels', all.map(([l]) => l + '\n').join(''));
} else if (cmd === 'encode') {
  const [jsdir, input] = args;
  const E = require(fs.realpathSync(jsdir) + '/Encoder.js');
  process.stdout.write(readTexts(input).map(t => JSON.stringify(E.encode(t)) + '\n').join(''));
} else if (cmd === 'compare') {
  const [input, ours, theirs] = args;
  const lines = f => fs.readFileSync(f, 'utf8').split('\n').slice(0, -1);
  const labels = lines(input + '.labels'), a = lines(ours), b = lines(theirs), texts = readTexts(input);
  if (a.length !== labels.length || b.length !== labels.length) {
    console.log(`bpe_check: ${labels.length} texts but ${a.length} id lists from C, ${b.length} from Encoder.js`);
    process.exit(1);
  }
  const diff = labels.map((_, i) => i).filter(i => a[i] !== b[i]);
  console.log(`bpe_check: ${labels.length - diff.length}/${labels.length} identical`);
  if (diff.length) {
    const i = diff[0], cut = s => (s.length > 300 ? s.slice(0, 300) + '...' : s);
    console.log(`first difference: text ${i + 1} (${labels[i]}): ${cut(JSON.stringify(texts[i]))}\n  C:          ${cut(a[i])}\n` +
                `  Encoder.js: ${cut(b[i])}`);
    process.exit(1);
  }
} else if (cmd === 'fixture') {
  // format (tests/test_bpe.c): '#' comment lines, then per case "BYTES NIDS\n", the text's raw bytes, "\n", the ids
  // separated by spaces, "\n". The big repeats and the random bytes stay in bpe_check.sh only (size).
  const [cache, jsdir, out] = args;
  const E = require(fs.realpathSync(jsdir) + '/Encoder.js');
  const keep = ([l]) => !/^(10000|5000|random)/.test(l) || /^10000 x (a|invalid 0xff)$/.test(l) ||
                        /^random bytes [0-4]?[0-9]$/.test(l);
  const go = tsv(`${cache}/go/dev.tsv`).slice(0, 200).concat(tsv(`${cache}/go_rel/dev.tsv`).slice(0, 100));
  const cases = hostile().filter(keep).concat(go.map(([l, s]) => [l, S(s)]));
  const parts = [S('# GPT-2 BPE ids by npm gpt-3-encoder 1.1.4 (Encoder.js), written by experiments/bpe_check.sh --fixture.\n' +
                   '# Per case: "BYTES NIDS", the text\'s raw bytes, a newline, the ids, a newline.\n')];
  for (const [, b] of cases) {
    const ids = E.encode(b.toString('utf8'));
    parts.push(S(`${b.length} ${ids.length}\n`), b, S('\n' + ids.join(' ') + '\n'));
  }
  fs.writeFileSync(out, Buffer.concat(parts));
  console.log(`bpe_check: ${out}: ${cases.length} cases`);
} else {
  console.error('usage: node bpe_check.js texts|encode|compare|fixture ...');
  process.exit(2);
}
