using System.Text.RegularExpressions;
using Npgsql;

namespace OrleansMeta.PostgreSql.Tests;

/// <summary>
/// Shows the plan PostgreSQL runs for one of the storage's batch statements, prepared under a name on one connection
/// as the storage prepares it, with the batch's settings in force. EXPLAIN EXECUTE takes no bind parameters, so a
/// batch's arrays go in as literals (<see cref="Array{T}"/>).
/// </summary>
internal sealed class PlanProbe(NpgsqlConnection connection, string name, string settingsSql)
{
    public static async Task<PlanProbe> PrepareAsync(NpgsqlConnection connection, string name, string parameterTypes, string statementSql, string settingsSql)
    {
        await ExecuteAsync(connection, $"PREPARE {name} ({parameterTypes}) AS {statementSql}");
        return new PlanProbe(connection, name, settingsSql);
    }

    /// <summary>Runs the statement for real, under the batch's settings, and rolls it back: the first run is the one
    /// that makes (and, for a generic plan, keeps) the plan.</summary>
    public async Task RunAndRollBackAsync(string arguments)
    {
        await using var transaction = await connection.BeginTransactionAsync();
        await ExecuteAsync(connection, settingsSql, transaction);
        await ExecuteAsync(connection, $"EXECUTE {name} ({arguments})", transaction);
        await transaction.RollbackAsync();
    }

    public async Task<IReadOnlyList<string>> ExplainAsync(string arguments)
    {
        await using var transaction = await connection.BeginTransactionAsync();
        await ExecuteAsync(connection, settingsSql, transaction);
        await using var explain = new NpgsqlCommand($"EXPLAIN (FORMAT TEXT) EXECUTE {name} ({arguments})", connection, transaction);
        var plan = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                plan.Add(reader.GetString(0));
            }
        }

        await transaction.RollbackAsync();
        return plan;
    }

    /// <summary>Asserts that the plan reaches <paramref name="table"/> only through its primary key, every index scan
    /// naming every key column (no range of the cluster's rows), at least one of them with every column taken from the
    /// batch's input (<c>i.column</c>), and never by a sequential or bitmap scan.</summary>
    public static void AssertKeyLookups(IReadOnlyList<string> plan, string table, params string[] keyColumns)
    {
        var text = string.Join('\n', plan);
        var fromInput = false;
        var ranges = false;
        for (var line = 1; line < plan.Count; line++)
        {
            if (!plan[line - 1].Contains($" using {table}_pkey", StringComparison.Ordinal) || !plan[line].Contains("Index Cond:", StringComparison.Ordinal))
            {
                continue;
            }

            ranges |= !keyColumns.All(column => plan[line].Contains($"({column} = ", StringComparison.Ordinal));
            fromInput |= keyColumns.All(column => Regex.IsMatch(plan[line], $@"\({column} = i(_\d+)?\.{column}\)"));
        }

        Assert.True(
            fromInput && !ranges && !text.Contains($"Seq Scan on {table}", StringComparison.Ordinal) && !text.Contains($"Bitmap Heap Scan on {table}", StringComparison.Ordinal),
            $"The plan reaches {table} other than by lookups of ({string.Join(", ", keyColumns)}):\n{text}");
    }

    public static string Array<T>(IEnumerable<T> items) => "'{" + string.Join(",", items) + "}'";

    public static async Task ExecuteAsync(NpgsqlConnection connection, string sql, NpgsqlTransaction? transaction = null)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync();
    }
}
