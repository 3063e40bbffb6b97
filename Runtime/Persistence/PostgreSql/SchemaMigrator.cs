using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace OrleansMeta.Runtime.Persistence.PostgreSql;

/// <summary>
/// Brings the database schema up to date by applying the embedded <see cref="SchemaScript"/>s that are not yet
/// recorded in <c>schema_migrations</c>. Idempotent, and safe when several silos start at once.
/// </summary>
public sealed partial class SchemaMigrator
{
    // Any fixed number works as long as nothing else in the database uses it; this one spells "OMSCHEMA".
    private const long MigrationLockKey = 0x4F4D_5343_4845_4D41;

    private readonly NpgsqlDataSource _dataSource;
    private readonly IReadOnlyList<SchemaScript> _scripts;
    private readonly ILogger _logger;

    public SchemaMigrator(NpgsqlDataSource dataSource, ILogger<SchemaMigrator>? logger = null)
        : this(dataSource, SchemaScript.LoadEmbedded(), logger)
    {
    }

    internal SchemaMigrator(NpgsqlDataSource dataSource, IReadOnlyList<SchemaScript> scripts, ILogger<SchemaMigrator>? logger)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        _dataSource = dataSource;
        _scripts = scripts;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>The scripts this migrator applies, in version order.</summary>
    public IReadOnlyList<SchemaScript> Scripts => _scripts;

    /// <summary>
    /// Applies every script not yet recorded, in version order, all in one transaction; returns the versions it
    /// applied (empty when the schema was already current). Scripts must be transactional (no
    /// <c>CREATE INDEX CONCURRENTLY</c>): a failing script rolls back the whole run, so the schema is never half-migrated.
    /// </summary>
    public async Task<IReadOnlyList<int>> MigrateAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

        // The lock comes before anything else, including CREATE TABLE IF NOT EXISTS, which is not safe to run
        // concurrently (two sessions can both decide the table is missing and one fails on the catalog's unique index).
        // A transaction-scoped lock cannot leak if this silo dies mid-migration.
        await using (var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = MigrationLockKey });
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using (var command = new NpgsqlCommand(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations
            (
                version    int PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            connection,
            transaction))
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var applied = new HashSet<int>();
        await using (var command = new NpgsqlCommand("SELECT version FROM schema_migrations", connection, transaction))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                applied.Add(reader.GetInt32(0));
            }
        }

        var newlyApplied = new List<int>();
        foreach (var script in _scripts)
        {
            if (applied.Contains(script.Version))
            {
                continue;
            }

            await using (var command = new NpgsqlCommand(script.Sql, connection, transaction))
            {
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await using (var command = new NpgsqlCommand(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", connection, transaction))
            {
                command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = script.Version });
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = script.Name });
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            newlyApplied.Add(script.Version);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);

        if (newlyApplied.Count > 0)
        {
            LogApplied(_logger, newlyApplied.Count, string.Join(", ", newlyApplied));
        }
        else
        {
            LogCurrent(_logger, _scripts.Count == 0 ? 0 : _scripts[^1].Version);
        }

        return newlyApplied;
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Applied {Count} schema script(s): {Versions}")]
    private static partial void LogApplied(ILogger logger, int count, string versions);

    [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "Schema is current at version {Version}")]
    private static partial void LogCurrent(ILogger logger, int version);
}
