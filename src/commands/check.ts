// eob check <run dir>: judges a saved chaos run again from its files alone (no database): the same checker,
// the same declaration rule and the same witnesses as the run, and says whether each case comes out as the run
// said. docs/history.md describes the files; docs/results.md how to read a verdict.
import type { CommandModule } from 'yargs';
import path from 'node:path';
import { caseDirectories, NoSnapshotError, readCaseRecord, recheckCase } from '../scenarios/chaos/caseRecord.ts';
import { ANOMALY_KINDS } from '../scenarios/chaos/checker.ts';
import { intInRange } from '../validate.ts';

interface CheckArgs {
  dir: string;
  witnesses: number;
}

export const command: CommandModule<object, CheckArgs> = {
  command: 'check <dir>',
  describe: 'check a saved chaos run again without a database: each case\'s verdict, result and witnesses; exit 0 when every case agrees with the run',
  builder: (y) =>
    y
      .positional('dir', { type: 'string', demandOption: true, describe: 'a chaos run directory (results/chaos/<time>) or one of its cases/<case> folders' })
      .option('witnesses', { type: 'number', default: 3, describe: 'witness sentences printed per case (all of them: cases/<case>/anomalies.jsonl)' }),
  handler: async (args) => {
    const shown = intInRange('check', 'witnesses', args.witnesses, 0, 1_000_000);
    const dirs = caseDirectories(path.resolve(args.dir));
    let disagreements = 0;
    let failed = 0;
    for (const dir of dirs) {
      let record;
      try {
        record = await readCaseRecord(dir);
      } catch (error) {
        if (!(error instanceof NoSnapshotError)) throw error;
        // Nothing to judge again: the run had no verdict either, and that is what it said.
        failed += 1;
        if (error.head.run.verdict !== 'error' && error.head.run.verdict !== 'interrupted') disagreements += 1;
        process.stdout.write(`FAIL ${error.head.case.name}: not re-checkable, ${error.message}\n`);
        continue;
      }
      const c = record.head.case;
      const r = recheckCase(record);
      const counts = ANOMALY_KINDS.filter((k) => r.verdict.anomalies[k] > 0).map((k) => `${k} ${r.verdict.anomalies[k]}`);
      if (!r.agrees) disagreements += 1;
      if (!r.passed) failed += 1;
      process.stdout.write(
        `${r.passed ? 'PASS' : 'FAIL'} ${record.head.engine === 'mariadb' ? '' : `${record.head.engine} `}${c.name} (expected ${c.expected}${c.tolerates.length > 0 ? `, tolerates ${c.tolerates.join(' ')}` : ''}${record.head.seed === undefined ? '' : `, seed ${record.head.seed}`}): ` +
          `verdict ${r.verdict.verdict}; ${counts.length === 0 ? 'no anomaly' : counts.join(', ')}; ${r.why}\n` +
          `  ${r.agrees ? 'same as the run' : `DIFFERS from the run: ${r.differences.join('; ')}`}\n`,
      );
      for (const w of r.witnesses.filter((x) => x.kind === c.expected || !c.tolerates.includes(x.kind)).concat(r.witnesses.filter((x) => x.kind !== c.expected && c.tolerates.includes(x.kind))).slice(0, shown)) {
        process.stdout.write(`  - ${w.label}: ${w.sentence}\n`);
      }
    }
    process.stdout.write(
      `check: ${dirs.length} case(s), ${dirs.length - failed} as expected, ${failed} not; ${disagreements === 0 ? 'every one agrees with the run' : `${disagreements} disagree with the run`}\n`,
    );
    process.exit(disagreements === 0 ? 0 : 1);
  },
};
