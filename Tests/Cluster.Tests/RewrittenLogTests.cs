using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrleansMeta.Contracts;
using OrleansMeta.Cluster.Tests.Infrastructure;

namespace OrleansMeta.Cluster.Tests;

/// <summary>
/// When the database loses committed records (an asynchronous replica promoted after its primary died), new records
/// take their offsets again. A silo that applied the lost ones must notice instead of silently skipping the new ones.
/// </summary>
public sealed class RewrittenLogTests
{
    [Fact]
    public async Task A_silo_whose_applied_records_vanished_from_the_log_stops_instead_of_diverging()
    {
        await using var cluster = new TestCluster("rewritten-log");
        var silo = await cluster.StartInProcessSiloAsync();
        using var client = cluster.CreateClient();
        await Register(client, 1);
        var lost = await Register(client, 2);
        await client.GetMetadataAsync(minOffset: lost);

        // What a promoted asynchronous replica looks like: the last record never arrived, and the head is one lower.
        await using (var connection = new Npgsql.NpgsqlConnection(TestPostgres.ConnectionString))
        {
            await connection.OpenAsync();
            foreach (var sql in new[]
            {
                "DELETE FROM metadata_log WHERE cluster_id = $1 AND log_offset = $2",
                "UPDATE metadata_log_head SET last_offset = $2 - 1 WHERE cluster_id = $1",
            })
            {
                await using var command = new Npgsql.NpgsqlCommand(sql, connection);
                command.Parameters.Add(new Npgsql.NpgsqlParameter<string> { TypedValue = cluster.ClusterId });
                command.Parameters.Add(new Npgsql.NpgsqlParameter<long> { TypedValue = lost });
                await command.ExecuteNonQueryAsync();
            }
        }

        // A new write takes the lost offset again, with other content.
        var stopping = silo.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        Assert.Equal(lost, await Register(client, 3));
        await Eventually.Until(() => stopping.IsCancellationRequested, "the silo stops on finding the log rewritten under it", TimeSpan.FromSeconds(30));
    }

    private static async Task<long> Register(OrleansMeta.Client.MetaClient client, int id)
        => (await client.RegisterBrokerAsync(id, new BrokerRegistrationRequest(Guid.NewGuid(), [new BrokerListener("PLAINTEXT", $"b{id}.test", 9092)]))).MetadataOffset;
}
